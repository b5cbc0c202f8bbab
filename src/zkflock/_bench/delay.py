"""A network path for the benchmarks: a TCP proxy that delays every byte.

Kernel ``netem`` is not available here, so the delay is made in user space:
for each connection and each direction one thread reads whatever arrives and
queues it with its due time (arrival + the one-way delay), and another sends
each chunk when it is due, in arrival order (the delay is constant, so a
FIFO queue is already time-ordered). Bytes are never reordered, merged
across directions or dropped; a round trip through the path costs at least
twice the delay more than a direct one.

The proxy runs in a process of its own (``DelayPath``), forked before any
client exists, so its threads share no GIL with the contenders and its CPU
time can be read from ``/proc`` and reported next to the figures it made.
Its sleeps use a 1 ns timer slack (Linux ``prctl``; the default slack of
50 µs would add that much to every delay), and it runs at real-time priority
(or nice -10) when allowed. A thread hand-off per chunk still adds ~0.05-0.1 ms each way:
the benchmarks measure and report the round trip the path really adds.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import socket
import threading
import time
from multiprocessing.connection import Connection
from types import TracebackType

_CTX = mp.get_context("fork")
_PR_SET_TIMERSLACK = 29
_CHUNK = 65536
_Held = queue.SimpleQueue[tuple[float, bytes] | None]  # (due, bytes); None: end of stream


def _precise_sleeps() -> None:
    """Ask Linux for 1 ns timer slack in this thread (inherited by new ones)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


class _Pair:
    """One proxied connection: two sockets, closed when both directions end."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self._ended = 0
        self._mutex = threading.Lock()

    def direction_ended(self) -> None:
        with self._mutex:
            self._ended += 1
            done = self._ended == 2
        if done:
            self.close()

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class DelayProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, each direction ``delay`` s late.

    Runs in the calling process (its accept loop and pumps are daemon
    threads); the benchmarks use it through ``DelayPath``.
    """

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, not {delay}")
        self._upstream = upstream
        self._delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._mutex = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="delay-accept").start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._mutex:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._mutex:
                self._pairs.append(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                dst.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                held: _Held = queue.SimpleQueue()
                threading.Thread(target=self._read, args=(src, held), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, held, pair), daemon=True).start()

    def _read(self, src: socket.socket, held: _Held) -> None:
        try:
            while data := src.recv(_CHUNK):
                held.put((time.monotonic() + self._delay, data))
        except OSError:
            pass
        held.put(None)

    def _write(self, dst: socket.socket, held: _Held, pair: _Pair) -> None:
        try:
            while (item := held.get()) is not None:
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # pass the peer's end of stream on
        except OSError:
            pair.close()
        finally:
            pair.direction_ended()


def _serve(conn: Connection, upstreams: list[tuple[str, int]], delay: float) -> None:
    _precise_sleeps()
    # A network does not wait for the clients' CPU: ahead of the contenders
    # in the run queue, the path keeps its delay on a busy 2-core machine.
    # Real-time FIFO when allowed (root): the proxy only ever blocks in recv,
    # sleep or a queue, and the kernel keeps 5 % of each core for the rest
    # (sched_rt_runtime_us); else nice -10, else as it is.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(-10)
    proxies = [DelayProxy(up, delay) for up in upstreams]
    try:
        conn.send([p.port for p in proxies])
        conn.recv()  # anything, or the parent's end closing, means stop
    except (EOFError, OSError):
        pass
    finally:
        for proxy in proxies:
            proxy.close()


class DelayPath:
    """A ``DelayProxy`` per upstream server, in a process of its own, e.g.
    ``with DelayPath([("127.0.0.1", 2181)], delay=0.0005) as path:
    zkflock.connect(path.hosts)`` (0.5 ms each way).
    """

    def __init__(self, upstreams: list[tuple[str, int]], delay: float) -> None:
        self.delay = delay
        self.upstreams = list(upstreams)
        self._conn, child = _CTX.Pipe()
        self._proc = _CTX.Process(target=_serve, args=(child, upstreams, delay), daemon=True,
                                  name="zkflock-delay")
        self._proc.start()
        child.close()
        if not self._conn.poll(30):
            self.stop()
            raise RuntimeError("the delay proxy did not start within 30 s")
        self.ports: list[int] = self._conn.recv()

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def cpu_seconds(self) -> float:
        """The proxy process's CPU time so far (user + system, all threads)."""
        pid = self._proc.pid
        if pid is None:
            return 0.0
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> DelayPath:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def upstreams_of(hosts: str) -> list[tuple[str, int]]:
    """``h1:p1,h2:p2`` (a chroot suffix is not allowed here) as address pairs."""
    out = []
    for entry in hosts.split(","):
        host, _, port = entry.strip().rpartition(":")
        out.append((host or "127.0.0.1", int(port)))
    return out
