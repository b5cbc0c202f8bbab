"""The one TCP proxy in front of ZooKeeper that the tests and the torture
run control (each client process can have its own, to be cut alone).

- ``freeze()`` (the torture run's partition): bytes stop flowing both ways
  but the sockets stay open, as in a real partition: the client sees
  silence, not a reset, and must detect the loss by its own timers.
- ``cut()``: close every proxied connection and refuse new ones (each is
  accepted and closed at once): a partition the client learns of at once.
- ``heal()`` ends either; it closes the frozen connections, so the client
  reconnects (a partition that ends usually ends with reset connections).
- ``drop_next_reply(ops)``: the server's reply to the next request whose
  opcode is in ``ops`` (by default the create opcodes) is dropped and the
  connection closed. The server has done the work, the client never learns
  it: the lost create reply that protected node names exist for.

ZooKeeper's wire format frames every message with a 4-byte length, so the
proxy forwards whole frames and can read each request's xid and opcode.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress

CREATE_OPS = frozenset({1, 15, 19})  # create, create2, createContainer

_Pair = tuple[socket.socket, socket.socket]  # (client, server)


class ZkProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; freeze, cut and heal the path."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._mutex = threading.Lock()
        self._pairs: list[_Pair] = []
        self._cut = False
        self._closed = False
        self._flowing = threading.Event()  # clear while frozen
        self._flowing.set()
        self._armed: frozenset[int] | None = None
        self._drop_xid: int | None = None
        self.dropped = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="zkflock-proxy")
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def freeze(self) -> None:
        self._flowing.clear()

    def cut(self) -> None:
        with self._mutex:
            self._cut = True
        self._drop_all()

    def heal(self) -> None:
        if not self._flowing.is_set():
            self._drop_all()  # frozen connections end reset, held frames with them
        with self._mutex:
            self._cut = False
        self._flowing.set()

    def drop_next_reply(self, ops: frozenset[int] = CREATE_OPS) -> None:
        with self._mutex:
            self._armed = ops
            self._drop_xid = None
            self.dropped.clear()

    def close(self) -> None:
        self._closed = True
        self._drop_all()
        self._flowing.set()
        with suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    # -- internals ----------------------------------------------------------

    def _drop_all(self) -> None:
        with self._mutex:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(*pair)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut:
                _close(client)
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            server.settimeout(None)
            pair = (client, server)
            with self._mutex:
                self._pairs.append(pair)
                self.accepted += 1
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair: _Pair, requests: bool) -> None:
        """Forward frames one way: client to server (``requests``) or back."""
        src, dst = pair if requests else pair[::-1]
        first = True  # the connect request and response have no header
        try:
            while (frame := _read_frame(src)) is not None:
                if not first and not self._forward(pair, frame, requests):
                    break
                first = False
                if not self._wait_flowing(pair):
                    break  # healed or closed while frozen: the held frame goes
                dst.sendall(frame)
        except OSError:
            pass
        _close(*pair)

    def _forward(self, pair: _Pair, frame: bytes, request: bool) -> bool:
        """Whether to forward ``frame``: False drops it and ends the connection."""
        with self._mutex:
            if request and len(frame) >= 12:
                xid, op = struct.unpack(">ii", frame[4:12])
                if self._armed is not None and op in self._armed:
                    self._drop_xid, self._armed = xid, None
                return True
            if request or len(frame) < 8:
                return True
            (xid,) = struct.unpack(">i", frame[4:8])
            if self._drop_xid is None or xid != self._drop_xid:
                return True
            self._drop_xid = None
        self.dropped.set()
        return False

    def _wait_flowing(self, pair: _Pair) -> bool:
        self._flowing.wait()  # heal() and close() set it, after dropping the pairs
        with self._mutex:
            return pair in self._pairs and not self._closed


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">i", header)
    body = _read_exact(sock, length) if length > 0 else b""
    if body is None:
        return None
    return header + body


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()
