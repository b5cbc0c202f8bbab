"""What the server and the machine say: four-letter words, zxids, watches."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from typing import Any


def four_letter(hosts: str, cmd: str, timeout: float = 5.0) -> str:
    """A four-letter word to the first server in ``hosts`` (chroot ignored)."""
    first = hosts.split(",")[0].split("/")[0]
    host, _, port = first.rpartition(":")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_zxid(hosts: str) -> int:
    for line in four_letter(hosts, "srvr").splitlines():
        if line.startswith("Zxid:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise RuntimeError("srvr did not report a Zxid; is 'srvr' allowed (4lw.commands.whitelist)?")


_FIRED = re.compile(r"^zk_sum_node_(created|deleted|children|changed)_watch_count\s+(\d+)")


def watches_fired(hosts: str) -> int:
    """How many watch notifications the server has sent so far (from ``mntr``)."""
    total = 0
    for line in four_letter(hosts, "mntr").splitlines():
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
