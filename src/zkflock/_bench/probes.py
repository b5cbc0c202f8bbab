"""What the server and the machine say: four-letter words, zxids, watches."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from typing import Any


def servers(hosts: str) -> list[str]:
    """Each ``host:port`` of a hosts string, chroot dropped."""
    return hosts.split("/", 1)[0].split(",")


def four_letter(hosts: str, cmd: str, timeout: float = 5.0) -> str:
    """A four-letter word to the first server in ``hosts`` (chroot ignored)."""
    host, _, port = servers(hosts)[0].rpartition(":")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_zxid(hosts: str) -> int:
    """The newest zxid any server in ``hosts`` has applied (on an ensemble the
    leader's: a follower may be a commit behind)."""
    return max(_zxid(server) for server in servers(hosts))


def _zxid(server: str) -> int:
    for line in four_letter(server, "srvr").splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise RuntimeError("srvr did not report a Zxid; is 'srvr' allowed (4lw.commands.whitelist)?")


_FIRED = re.compile(r"^zk_sum_node_(created|deleted|children|changed)_watch_count\s+(\d+)")


def watches_fired(hosts: str) -> int:
    """How many watch notifications the servers in ``hosts`` have sent so far
    (``mntr``; each server notifies its own clients, so all are summed)."""
    total = 0
    for server in servers(hosts):
        for line in four_letter(server, "mntr").splitlines():
            match = _FIRED.match(line)
            if match:
                total += int(match.group(2))
    return total


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy it was."""
    load = os.getloadavg()
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in load],
        "python": ".".join(map(str, sys.version_info[:3])),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
