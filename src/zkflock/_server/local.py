"""LocalZooKeeper: a real ZooKeeper, standalone or an ensemble, on loopback ports.

Used by the tests, the demo and ``zkflock server``. It runs the Debian
package's jars directly (no init scripts), one JVM per node, each with its own
folder ``base_dir/node{myid}/`` holding ``zoo.cfg``, ``data/`` and
``zookeeper.log``.

Example::

    with LocalZooKeeper("/tmp/zk", nodes=3) as zk:
        client = KazooClient(hosts=zk.hosts)
        zk.kill_node(zk.leader())
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from zkflock._errors import ServerStartError
from zkflock._server.config import (
    NodePorts,
    allocate_node_ports,
    hosts_string,
    log_tails,
    parse_mode,
    parse_zxid,
    pid_alive,
    process_mentions,
    read_state,
    render_zoo_cfg,
    require_installed,
    send_four_letter,
    tls_probe_context,
    wait_stopped,
    write_state,
)
from zkflock._server.launch import launch_node

_POLL_INTERVAL = 0.05
_STOP_GRACE = 10.0
_DETACHED: list[subprocess.Popen[bytes]] = []


class LocalZooKeeper:
    """A local ZooKeeper standalone server (``nodes=1``) or ensemble on 127.0.0.1."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        nodes: int = 1,
        tick_time: int = 500,
        force_sync: bool = True,
        max_session_timeout: int | None = 60000,
        extra_config: Mapping[str, str | None] | None = None,
        extra_classpath: Sequence[str] = (),
    ) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, not {nodes}")
        self._base_dir = Path(base_dir).absolute()
        self._nodes = nodes
        self._tick_time = tick_time
        self._force_sync = force_sync
        self._max_session_timeout = max_session_timeout
        self._extra_config = dict(extra_config or {})
        self._extra_classpath = tuple(extra_classpath)
        self._ports: dict[int, NodePorts] | None = None
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._pids: dict[int, int] = {}
        self._log_offsets: dict[int, int] = {}
        self._background = False

    # -- paths and addresses -------------------------------------------------

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def nodes(self) -> int:
        return self._nodes

    def node_dir(self, myid: int) -> Path:
        return self._base_dir / f"node{myid}"

    def log_path(self, myid: int) -> Path:
        return self.node_dir(myid) / "zookeeper.log"

    def _node_ports(self) -> dict[int, NodePorts]:
        if self._ports is None:
            raise ServerStartError("the local ZooKeeper has not been started")
        return self._ports

    @property
    def _tls_only(self) -> bool:
        return self._extra_config.get("clientPort", "x") in (None, "")

    @property
    def client_ports(self) -> dict[int, int]:
        """myid -> the port clients connect to (the TLS port for a TLS-only server)."""
        ports = self._node_ports()
        return {m: (p.secure if self._tls_only else p.client) for m, p in ports.items()}

    @property
    def secure_ports(self) -> dict[int, int]:
        """myid -> the port used when extra_config sets ``secureClientPort='auto'``."""
        return {m: p.secure for m, p in self._node_ports().items()}

    @property
    def hosts(self) -> str:
        return hosts_string(self.client_ports)

    def node_hosts(self, myid: int) -> str:
        return f"127.0.0.1:{self.client_ports[myid]}"

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 30.0, *, background: bool = False) -> LocalZooKeeper:
        """Start every node and wait until the ensemble serves; return self.

        A foreground server (the default) is stopped when this process exits,
        even when it is killed; ``background=True`` servers outlive it (see
        ``save_state``).
        """
        java = require_installed()
        self._background = background
        deadline = time.monotonic() + timeout
        for attempt in (1, 2):
            if self._ports is None:
                self._ports = allocate_node_ports(self._nodes)
            try:
                for myid in self._ports:
                    self._spawn(java, myid)
                self._wait_ready(list(self._ports), deadline)
            except ServerStartError:
                bind_failed = any(self._bind_failed(m) for m in self._ports)
                self._terminate_all()
                if attempt == 1 and bind_failed:
                    # Another process took a port between picking and binding.
                    self._ports = None
                    continue
                raise
            break
        if not background:
            atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop every node: SIGTERM, wait, SIGKILL the ones still running."""
        atexit.unregister(self.stop)
        self._terminate_all()

    def _terminate_all(self) -> None:
        for myid in list(self._pids):
            self._signal(myid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        for myid in list(self._pids):
            self._wait_dead(myid, deadline)

    def start_node(self, myid: int, timeout: float = 30.0) -> None:
        """Start node ``myid`` again with the same ports and data; wait until it serves."""
        java = require_installed()
        if self.is_running(myid):
            return
        self._spawn(java, myid)
        self._wait_ready([myid], time.monotonic() + timeout)

    def stop_node(self, myid: int) -> None:
        """Stop node ``myid`` gracefully (SIGTERM, then SIGKILL after a grace period)."""
        self._signal(myid, signal.SIGTERM)
        self._wait_dead(myid, time.monotonic() + _STOP_GRACE)

    def kill_node(self, myid: int) -> None:
        """SIGKILL node ``myid`` and wait until it is gone."""
        self._signal(myid, signal.SIGKILL)
        self._wait_dead(myid, time.monotonic() + _STOP_GRACE)

    def restart_node(self, myid: int, timeout: float = 30.0) -> None:
        self.stop_node(myid)
        self.start_node(myid, timeout)

    def pause_node(self, myid: int) -> None:
        """SIGSTOP node ``myid``: it holds its sockets but answers nothing."""
        self._signal(myid, signal.SIGSTOP)
        if (pid := self._pids.get(myid)) is not None:
            wait_stopped(pid)

    def resume_node(self, myid: int) -> None:
        self._signal(myid, signal.SIGCONT)

    def pid(self, myid: int) -> int | None:
        """The process id of node ``myid``, or None if it is not running."""
        return self._pids.get(myid) if self.is_running(myid) else None

    def is_running(self, myid: int) -> bool:
        pid = self._pids.get(myid)
        return pid is not None and not self._reap(myid) and pid_alive(pid)

    def __enter__(self) -> LocalZooKeeper:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observation -----------------------------------------------------------

    def four_letter(self, myid: int, cmd: str, timeout: float = 2.0) -> str:
        """Send a four-letter word (``srvr``, ``mntr``, ``ruok``...) to node ``myid``.

        Raises OSError when the node does not answer.
        """
        context = self._tls_context() if self._tls_only else None
        return send_four_letter(self.client_ports[myid], cmd, timeout, context)

    def mode(self, myid: int) -> str | None:
        """'standalone', 'leader' or 'follower'; None if the node is not serving."""
        try:
            return parse_mode(self.four_letter(myid, "srvr", timeout=1.0))
        except (OSError, ssl.SSLError, KeyError):
            return None

    def leader(self) -> int | None:
        """The leader's myid (1 for a standalone server), or None if there is none."""
        for myid in self._node_ports():
            if self.mode(myid) in ("leader", "standalone"):
                return myid
        return None

    def zxid(self) -> int:
        """The last zxid the leader (or standalone server) has processed."""
        leader = self.leader()
        zxid = None if leader is None else parse_zxid(self.four_letter(leader, "srvr"))
        if zxid is None:
            raise ServerStartError(
                f"no ZooKeeper leader is serving; see the logs under {self._base_dir}"
            )
        return zxid

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of every node's log, each under a header."""
        return log_tails([self.log_path(m) for m in range(1, self._nodes + 1)], lines)

    # -- background mode -------------------------------------------------------

    def save_state(self) -> None:
        """Write ``state.json`` so another process can ``load()`` and stop us.

        Servers started with ``background=True`` keep running after this
        process exits; foreground ones still stop with it.
        """
        atexit.unregister(self.stop)
        # The servers outlive this handle on purpose; keeping their Popen objects
        # referenced stops Python from warning that they are "still running".
        _DETACHED.extend(self._procs.values())
        self._procs.clear()
        write_state(self._base_dir, {
            **self._options(),
            "ports": {str(m): [p.client, p.peer, p.election, p.secure]
                      for m, p in self._node_ports().items()},
            "pids": {str(m): pid for m, pid in self._pids.items()},
        })

    def _options(self) -> dict[str, Any]:
        """The constructor's keywords, as saved in (and loaded from) state.json."""
        return {"nodes": self._nodes, "tick_time": self._tick_time,
                "force_sync": self._force_sync, "max_session_timeout": self._max_session_timeout,
                "extra_config": self._extra_config, "extra_classpath": list(self._extra_classpath)}

    @classmethod
    def load(cls, base_dir: str | os.PathLike[str]) -> LocalZooKeeper | None:
        """The servers described by ``base_dir/state.json``, or None if there is none."""
        state = read_state(Path(base_dir))
        if state is None:
            return None
        zk = cls(base_dir, **{key: state[key] for key in (
            "nodes", "tick_time", "force_sync", "max_session_timeout", "extra_config",
            "extra_classpath")})
        zk._background = True
        zk._ports = {int(m): NodePorts(*p) for m, p in state["ports"].items()}
        zk._pids = {int(m): int(pid) for m, pid in state["pids"].items()}
        # A pid may have been reused by an unrelated process since: keep only ours.
        zk._pids = {m: pid for m, pid in zk._pids.items() if zk._owns(m, pid)}
        return zk

    # -- internals -------------------------------------------------------------

    def _spawn(self, java: str, myid: int) -> None:
        try:
            self._spawn_process(java, myid)
        except OSError as err:
            raise ServerStartError(
                f"cannot start ZooKeeper node {myid} in {self.node_dir(myid)}: {err}; "
                "check that the folder is writable"
            ) from err

    def _spawn_process(self, java: str, myid: int) -> None:
        cfg = render_zoo_cfg(
            myid=myid,
            data_dir=str(self.node_dir(myid) / "data"),
            ports=self._node_ports(),
            tick_time=self._tick_time,
            force_sync=self._force_sync,
            max_session_timeout=self._max_session_timeout,
            extra_config=self._extra_config,
        )
        proc, self._log_offsets[myid] = launch_node(
            java, self.node_dir(myid), myid, cfg, self.log_path(myid),
            extra_classpath=self._extra_classpath, background=self._background)
        self._procs[myid] = proc
        self._pids[myid] = proc.pid

    def _wait_ready(self, myids: list[int], deadline: float) -> None:
        """Poll ``srvr`` until each of ``myids`` serves and the ensemble has a leader."""
        while True:
            for myid in myids:
                if not self.is_running(myid):
                    raise self._start_error(f"ZooKeeper node {myid} exited during start")
            modes = {myid: self.mode(myid) for myid in self._node_ports()}
            if all(modes[m] is not None for m in myids) and any(
                mode in ("leader", "standalone") for mode in modes.values()
            ):
                return
            if time.monotonic() >= deadline:
                raise self._start_error(f"ZooKeeper did not become ready (modes: {modes})")
            time.sleep(_POLL_INTERVAL)

    def _start_error(self, what: str) -> ServerStartError:
        return ServerStartError(
            f"{what}; is Java 17 installed and are the ports free? "
            f"See the logs under {self._base_dir}:\n{self.log_tail(30)}"
        )

    def _bind_failed(self, myid: int) -> bool:
        try:
            with open(self.log_path(myid), "rb") as log:
                log.seek(self._log_offsets.get(myid, 0))
                return b"Address already in use" in log.read()
        except OSError:
            return False

    def _signal(self, myid: int, sig: signal.Signals) -> None:
        pid = self._pids.get(myid)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            if sig == signal.SIGTERM:
                os.kill(pid, signal.SIGCONT)  # a paused JVM cannot act on SIGTERM

    def _wait_dead(self, myid: int, deadline: float) -> None:
        while self.is_running(myid):
            if time.monotonic() >= deadline:
                self._signal(myid, signal.SIGKILL)
                deadline = time.monotonic() + _STOP_GRACE
            time.sleep(_POLL_INTERVAL / 5)
        self._pids.pop(myid, None)
        proc = self._procs.pop(myid, None)
        if proc is not None:
            proc.wait(timeout=_STOP_GRACE)  # it is a zombie by now: reap it

    def _reap(self, myid: int) -> bool:
        """Reap our child if it exited; True if it is known to be dead."""
        proc = self._procs.get(myid)
        if proc is not None:
            return proc.poll() is not None
        pid = self._pids[myid]
        with contextlib.suppress(ChildProcessError):
            # A server started by save_state() in this same process is our child.
            done, _ = os.waitpid(pid, os.WNOHANG)
            return done == pid
        return False

    def _owns(self, myid: int, pid: int) -> bool:
        return process_mentions(pid, self.node_dir(myid) / "zoo.cfg")

    def _tls_context(self) -> ssl.SSLContext:
        return tls_probe_context(self._extra_config.get("ssl.keyStore.location"))
