"""A tiny TCP proxy whose path can be cut and healed (for the partition fault).

While cut, bytes stop flowing both ways but sockets stay open, as in a real
partition: the client sees silence, not a reset, and must detect the loss by
its own timers. Healing closes the frozen connections, so the client
reconnects (a partition that ends usually ends with reset connections).
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; ``cut()`` and ``heal()`` the path."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._mutex = threading.Lock()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="zkflock-proxy").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        self._cut.set()

    def heal(self) -> None:
        self._drop_all()
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._drop_all()
        self._listener.close()

    def _drop_all(self) -> None:
        with self._mutex:
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._mutex:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.05)
        try:
            while not self._closed.is_set():
                if self._cut.is_set():
                    self._cut_wait()
                    continue
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _cut_wait(self) -> None:
        # Frozen: read nothing, forward nothing, until healed or closed.
        self._closed.wait(0.05)
