"""A small threaded TCP proxy in front of ZooKeeper that the tests control.

- ``cut()``: close every proxied connection and refuse new ones (each is
  accepted and closed at once) until ``heal()``: a network partition between
  this client and every server.
- ``drop_next_reply(ops)``: the server's reply to the next request whose
  opcode is in ``ops`` (by default the create opcodes) is dropped and the
  connection closed. The server has done the work, the client never learns
  it: the lost create reply that protected node names exist for.

ZooKeeper's wire format frames every message with a 4-byte length, so the
proxy forwards whole frames and can read each request's xid and opcode.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

CREATE_OPS = frozenset({1, 15, 19})  # create, create2, createContainer


class ZkProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._mutex = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut = False
        self._closed = False
        self._armed: frozenset[int] | None = None
        self._drop_xid: int | None = None
        self.dropped = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._mutex:
            self._cut = True
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(*pair)

    def heal(self) -> None:
        with self._mutex:
            self._cut = False

    def drop_next_reply(self, ops: frozenset[int] = CREATE_OPS) -> None:
        with self._mutex:
            self._armed = ops
            self._drop_xid = None
            self.dropped.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)

    # -- internals ----------------------------------------------------------

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
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
                server = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._mutex:
                self._pairs.append((client, server))
                self.accepted += 1
            pair = (client, server)
            threading.Thread(target=self._pump_requests, args=pair, daemon=True).start()
            threading.Thread(target=self._pump_replies, args=pair, daemon=True).start()

    def _pump_requests(self, client: socket.socket, server: socket.socket) -> None:
        first = True  # the connect request has no request header
        try:
            while True:
                frame = _read_frame(client)
                if frame is None:
                    break
                if not first and len(frame) >= 12:
                    xid, op = struct.unpack(">ii", frame[4:12])
                    with self._mutex:
                        if self._armed is not None and op in self._armed:
                            self._drop_xid, self._armed = xid, None
                first = False
                server.sendall(frame)
        except OSError:
            pass
        _close(client, server)

    def _pump_replies(self, client: socket.socket, server: socket.socket) -> None:
        first = True  # the connect response has no reply header
        try:
            while True:
                frame = _read_frame(server)
                if frame is None:
                    break
                if not first and len(frame) >= 8:
                    (xid,) = struct.unpack(">i", frame[4:8])
                    with self._mutex:
                        drop = self._drop_xid is not None and xid == self._drop_xid
                        if drop:
                            self._drop_xid = None
                    if drop:
                        self.dropped.set()
                        break
                first = False
                client.sendall(frame)
        except OSError:
            pass
        _close(client, server)


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
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
