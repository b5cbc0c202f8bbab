"""Helpers for the local ZooKeeper launcher that hold no state.

Ports, zoo.cfg text, the java command line, ``srvr`` parsing, /proc probes.
Nothing here starts or stops a process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkflock._errors import ServerStartError

ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
ZOOKEEPER_CONF_DIR = "/etc/zookeeper/conf"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# slf4j-simple comes with the zookeeper package's dependencies; without a
# binding on the classpath the server logs nothing at all, and a failed start
# would leave an empty log to show.
LOG_BINDING_JAR = "/usr/share/java/slf4j-simple.jar"
# Small heap and the serial collector: the JVM starts noticeably faster on a
# 2-core machine, and a test server never holds much data.
JVM_FLAGS = ("-Xmx256m", "-XX:+UseSerialGC", "-Xshare:auto")
READY_MODES = frozenset({"standalone", "leader", "follower"})


@dataclass(frozen=True)
class NodePorts:
    """The loopback ports one node listens on.

    ``peer``/``election`` are unused by a standalone server, ``secure`` unless
    extra_config sets ``secureClientPort='auto'``.
    """

    client: int
    peer: int
    election: int
    secure: int


def pick_free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    All sockets stay bound until every port is picked, so the kernel cannot
    hand the same port out twice; another process may still take one before
    ZooKeeper binds it, which the launcher handles by retrying with new ports.
    """
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in ports:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def allocate_node_ports(nodes: int) -> dict[int, NodePorts]:
    """Free client, peer and election ports for myids ``1..nodes``."""
    ports = pick_free_ports(4 * nodes)
    return {myid: NodePorts(*ports[4 * myid - 4 : 4 * myid]) for myid in range(1, nodes + 1)}


def render_zoo_cfg(
    *,
    myid: int,
    data_dir: str,
    ports: Mapping[int, NodePorts],
    tick_time: int,
    force_sync: bool,
    max_session_timeout: int | None,
    extra_config: Mapping[str, str | None] | None = None,
) -> str:
    """The zoo.cfg text for node ``myid`` of an ensemble described by ``ports``.

    ``extra_config`` overrides defaults; a value of ``None`` (or ``''`` for
    ``clientPort``, for TLS-only servers) removes the key, and
    ``secureClientPort='auto'`` becomes this node's own ``secure`` port.
    """
    settings: dict[str, str] = {
        "tickTime": str(tick_time),
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": data_dir,
        "clientPort": str(ports[myid].client),
        "clientPortAddress": "127.0.0.1",
        "admin.enableServer": "false",
        "4lw.commands.whitelist": "*",
        "minSessionTimeout": str(2 * tick_time),
    }
    if max_session_timeout is not None:
        settings["maxSessionTimeout"] = str(max_session_timeout)
    if not force_sync:
        settings["forceSync"] = "no"  # exactly "no": any other value keeps fsync on
    if len(ports) > 1:
        for node_id, node in sorted(ports.items()):
            settings[f"server.{node_id}"] = f"127.0.0.1:{node.peer}:{node.election}"
    for key, value in (extra_config or {}).items():
        if value is None or (key == "clientPort" and value == ""):
            settings.pop(key, None)
        elif key == "secureClientPort" and value == "auto":
            settings[key] = str(ports[myid].secure)
        else:
            settings[key] = value
    if "clientPort" not in settings and "clientPortAddress" not in (extra_config or {}):
        # ZooKeeper refuses a clientPortAddress without a clientPort (TLS-only).
        settings.pop("clientPortAddress")
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def parse_srvr(text: str) -> dict[str, str]:
    """Parse the ``Key: value`` lines of a ``srvr``/``stat`` answer."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and not key.startswith(" "):
            fields.setdefault(key.strip(), value.strip())
    return fields


def parse_mode(text: str) -> str | None:
    """The server's mode from a ``srvr`` answer, or None if it is not serving."""
    mode = parse_srvr(text).get("Mode")
    return mode if mode in READY_MODES else None


_ZXID = re.compile(r"^Zxid:\s*0x([0-9a-fA-F]+)\s*$", re.MULTILINE)


def parse_zxid(text: str) -> int | None:
    """The ``Zxid: 0x...`` value of a ``srvr`` answer as an int."""
    match = _ZXID.search(text)
    return int(match.group(1), 16) if match else None


def hosts_string(client_ports: Mapping[int, int]) -> str:
    """``127.0.0.1:p1,127.0.0.1:p2,...`` in myid order."""
    return ",".join(f"127.0.0.1:{port}" for _, port in sorted(client_ports.items()))


def java_command(
    java: str, node_dir: os.PathLike[str], extra_classpath: Sequence[str]
) -> list[str]:
    """The argv that runs one ZooKeeper node whose zoo.cfg is in ``node_dir``."""
    classpath = [ZOOKEEPER_CONF_DIR, ZOOKEEPER_JAR, *extra_classpath]
    if os.path.exists(LOG_BINDING_JAR):
        classpath.append(LOG_BINDING_JAR)
    return [
        java, *JVM_FLAGS,
        f"-Dzookeeper.log.dir={os.fspath(node_dir)}",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        # Every readiness probe would otherwise log a line at INFO.
        "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.NIOServerCnxn=warn",
        "-cp", ":".join(classpath),
        MAIN_CLASS, os.path.join(node_dir, "zoo.cfg"),
    ]


def tls_probe_context(keystore: str | None) -> ssl.SSLContext:
    """A TLS client context for four-letter words on a TLS-only local server.

    It presents the server's own PEM key pair as client certificate (the
    server trusts its own CA) and skips verification: it talks only to a
    server we started on loopback.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if keystore:
        context.load_cert_chain(keystore)
    return context


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state is the first field after the parenthesised command name.
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def die_with_parent(argv: list[str]) -> list[str]:
    """Make the kernel SIGTERM the JVM when this process dies, however it dies.

    atexit does not run when the parent is killed (SIGTERM, SIGKILL, a test
    runner's timeout), and the JVM would be left holding its ports. The
    parent-death signal belongs to the forking *thread*, so it is only set
    from the main thread: a worker thread's exit must not stop the server.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "SIGTERM", "--", *argv]


def require_installed() -> str:
    java = shutil.which("java")
    if java is None or not os.path.exists(ZOOKEEPER_JAR):
        raise ServerStartError(
            "ZooKeeper is not installed: run 'make setup' or 'apt-get install zookeeper'"
        )
    return java


def send_four_letter(
    port: int, cmd: str, timeout: float, context: ssl.SSLContext | None = None
) -> str:
    """Send a four-letter word to 127.0.0.1:``port`` and read the whole answer
    (over TLS when ``context`` is given). Raises OSError when nobody answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if context is not None:
        sock = context.wrap_socket(sock)
    with sock:
        sock.sendall(cmd.encode("ascii"))
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def log_tails(paths: list[Path], lines: int) -> str:
    """The last ``lines`` lines of each node's log, each under a header."""
    parts = []
    for myid, path in enumerate(paths, start=1):
        try:
            text = path.read_text("utf-8", "replace").splitlines()[-lines:]
        except OSError as err:
            text = [f"(no log: {err.strerror})"]
        parts.append(f"==> node{myid} {path} <==\n" + "\n".join(text))
    return "\n".join(parts)


def process_mentions(pid: int, path: Path) -> bool:
    """Whether process ``pid`` runs with ``path`` on its command line (a pid
    from a state file may have been reused by another process since)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(path).encode() in cmdline


def write_state(base_dir: Path, state: dict[str, Any]) -> None:
    """Write ``base_dir/state.json`` atomically (for ``zkflock server``)."""
    base_dir.mkdir(parents=True, exist_ok=True)
    tmp = base_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", "utf-8")
    tmp.replace(base_dir / "state.json")


def read_state(base_dir: Path) -> dict[str, Any] | None:
    """``base_dir/state.json``, or None if there is none (or it is unreadable)."""
    try:
        state = json.loads((base_dir / "state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def wait_stopped(pid: int, timeout: float = 5.0) -> bool:
    """Wait until every thread of ``pid`` is stopped (state T in /proc).

    kill(SIGSTOP) returns before a multi-threaded JVM has stopped: each thread
    stops on its next way out of the kernel, and on a loaded machine a server
    thread can still answer a request in between (test_paused_node_stops_answering
    saw a paused follower answer ``srvr``). False if it did not stop in time.
    """
    deadline = time.monotonic() + timeout
    tasks = Path(f"/proc/{pid}/task")
    while time.monotonic() < deadline:
        if not tasks.exists():
            return False  # the process is gone
        try:
            states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0]
                      for t in tasks.iterdir()]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            states = []  # a thread ended while we looked: look again
        if states and all(s in ("T", "t") for s in states):
            return True
        time.sleep(0.005)
    return False

