"""The one TCP proxy of the tests and the torture run: a frozen path is
silent with its sockets open, a cut one is reset, and heal ends both (a
framed echo server stands in for ZooKeeper; the fault tests drive the
proxy against the real one)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import suppress

import pytest

from zkflock._harness.proxy import ZkProxy


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


@pytest.fixture
def proxy() -> Iterator[ZkProxy]:
    server = socket.create_server(("127.0.0.1", 0))

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    zk_proxy = ZkProxy(server.getsockname())
    yield zk_proxy
    zk_proxy.close()
    server.close()


def _connect(proxy: ZkProxy) -> socket.socket:
    host, port = proxy.address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(_frame(b"connect"))  # the first frame has no header: passed through
    assert sock.recv(64) == _frame(b"connect")
    return sock


def _request(xid: int) -> bytes:
    return _frame(struct.pack(">ii", xid, 4) + b"payload")


def test_frozen_path_is_silent_and_open_until_healed(proxy: ZkProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(_request(1))
        assert sock.recv(64) == _request(1)
        proxy.freeze()
        sock.sendall(_request(2))
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):  # silence: no reply, and no reset either
            sock.recv(64)
        proxy.heal()
        sock.settimeout(10)
        _assert_closed(sock)  # healing resets the frozen connection
    with _connect(proxy) as fresh:  # and new connections flow again
        fresh.sendall(_request(3))
        assert fresh.recv(64) == _request(3)


def test_cut_path_resets_and_refuses_until_healed(proxy: ZkProxy) -> None:
    with _connect(proxy) as sock:
        proxy.cut()
        assert proxy.is_cut
        _assert_closed(sock)
    host, port = proxy.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as refused:
        _assert_closed(refused)  # accepted and closed at once
    proxy.heal()
    assert not proxy.is_cut
    with _connect(proxy):
        pass


def _assert_closed(sock: socket.socket) -> None:
    with suppress(ConnectionResetError):  # a reset is closed too
        assert sock.recv(64) == b""
