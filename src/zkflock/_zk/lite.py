"""A minimal ZooKeeper session for ``zkflock run``'s fast path: one socket,
no threads, synchronous requests (pipelined when asked), no kazoo.

What kazoo's connection does that a one-shot lock needs, and nothing else:

- connect to one of the hosts (in a random order, as kazoo) with the
  session timeout the full path asks for; ``ConnectError`` after the connect
  timeout;
- a ping when idle for a third of the negotiated timeout, and the connection
  counted dead when nothing came back for two thirds of it (kazoo's read
  timeout);
- on a dropped connection, reconnect to the hosts with the session id and
  password (the session lives on) until the session timeout has passed since
  the server was last heard: then, or when the server says the session
  expired, :class:`SessionLost`;
- watch notifications kept in :attr:`LiteSession.events` for the caller.

The caller drives it: :meth:`LiteSession.step` waits on the socket and on
the caller's own descriptors (the child's pidfd) at once, so the lock, the
pings and the child share one ``poll(2)``.
"""

from __future__ import annotations

import _socket
import os
import select
import time

from zkflock._errors import AuthFailedError, ConnectError, SessionExpiredError
from zkflock._zk import jute

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

_READ = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
_MAX_PACKET = 64 * 1024 * 1024


class Disconnected(ConnectError):
    """The connection dropped; the session may live on (reconnect with step)."""


class SessionLost(SessionExpiredError):
    """The session expired, or no server was reached within its timeout."""


class ReplyError(Exception):
    """A request answered with a ZooKeeper error code (``jute.NO_NODE``, ...)."""

    def __init__(self, code: int, path: str) -> None:
        super().__init__(f"ZooKeeper error {code} on {path}")
        self.code = code
        self.path = path


def parse_hosts(hosts: str) -> tuple[list[tuple[str, int]], str]:
    """kazoo's hosts string (``h1:2181,h2:2181/chroot``) -> (hosts, chroot)."""
    chroot = ""
    if "/" in hosts:
        hosts, _, rest = hosts.partition("/")
        chroot = "/" + rest.rstrip("/") if rest.strip("/") else ""
    found = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        host, port = item, 2181
        if item.startswith("["):  # [::1]:2181
            host, _, tail = item[1:].partition("]")
            if tail.startswith(":"):
                port = int(tail[1:])
        elif item.count(":") == 1:
            host, _, text = item.partition(":")
            port = int(text)
        found.append((host, port))
    return found, chroot


class LiteSession:
    """One ZooKeeper session on one socket at a time, driven by its caller."""

    def __init__(self, hosts: str, session_timeout: float, *,
                 auth: tuple[str, bytes] | None = None,
                 acl: Sequence[tuple[int, str, str]] = jute.OPEN_ACL) -> None:
        self.auth = auth  # (scheme, credential), sent on every connection
        self.acl = acl    # (perms, scheme, id) of every node we create
        self.hosts, self.chroot = parse_hosts(hosts)
        if not self.hosts:
            raise ConnectError(f"no ZooKeeper host in {hosts!r}")
        start = os.urandom(1)[0] % len(self.hosts)  # a random first host, as kazoo
        self.hosts = self.hosts[start:] + self.hosts[:start]
        self._next_host = 0
        self.requested_ms = int(session_timeout * 1000)
        self.timeout = session_timeout  # the negotiated one once connected
        self.session_id = 0
        self._passwd = b"\0" * 16
        self._zxid = 0
        self._xid = 0
        self._sock: _socket.socket | None = None
        self._buf = bytearray()
        self._replies: dict[int, tuple[int, bytes]] = {}
        self.events: list[tuple[int, str]] = []
        self.connections = 0  # how many connections the session has had
        self.last_heard = 0.0
        self._last_sent = 0.0

    # -- connecting ---------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def open(self, connect_timeout: float) -> None:
        """Start a new session; ConnectError once ``connect_timeout`` passed."""
        deadline = time.monotonic() + connect_timeout
        while not self._attempt(deadline):
            if time.monotonic() >= deadline:
                raise ConnectError("no ZooKeeper server answered")
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _attempt(self, deadline: float) -> bool:
        """One connection attempt to the next host; True once connected."""
        host, port = self.hosts[self._next_host]
        self._next_host = (self._next_host + 1) % len(self.hosts)
        try:
            sock = self._dial(host, port, deadline)
        except OSError:
            return False
        try:
            sock.sendall(jute.connect_request(self._zxid, self.requested_ms, self.session_id,
                                              self._passwd))
            self._sock, self._buf = sock, bytearray()
            timeout_ms, session_id, passwd = jute.parse_connected(
                self._read_packet(deadline))
        except (OSError, jute.JuteError, Disconnected):
            self._drop(sock)
            return False
        if timeout_ms <= 0:
            self._drop(sock)
            raise SessionLost("the ZooKeeper session expired")
        if self.session_id and session_id != self.session_id:  # never, from a sound server
            self._drop(sock)
            raise SessionLost("the ZooKeeper session was replaced by a new one")
        self.session_id, self._passwd = session_id, passwd
        self.timeout = timeout_ms / 1000.0
        if self.auth is not None and not self._authenticate(deadline):
            return False
        self.connections += 1
        self.last_heard = self._last_sent = time.monotonic()
        return True

    def _authenticate(self, deadline: float) -> bool:
        """Send our credential (each connection needs it, as in kazoo); False
        if the connection dropped first, AuthFailedError if refused."""
        assert self.auth is not None
        assert self._sock is not None
        try:
            self._sock.sendall(jute.request(jute.AUTH_XID, jute.AUTH, jute.auth_body(*self.auth)))
            while jute.AUTH_XID not in self._replies:
                self._receive(max(deadline, time.monotonic() + 1.0))
        except (OSError, Disconnected):
            self._drop()
            return False
        err, _ = self._replies.pop(jute.AUTH_XID)
        if err != jute.OK:
            self._drop()
            raise AuthFailedError(f"ZooKeeper refused our credentials (error {err})")
        return True

    @staticmethod
    def _dial(host: str, port: int, deadline: float) -> _socket.socket:
        error: OSError = OSError(f"cannot resolve {host}")
        # An ASCII name as bytes: a str goes through the idna codec, whose
        # import (stringprep, unicodedata) costs more than the connection.
        name: str | bytes = host.encode() if host.isascii() else host
        for family, kind, proto, _, addr in _socket.getaddrinfo(name, port, 0,
                                                                _socket.SOCK_STREAM):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.settimeout(max(0.05, min(deadline - time.monotonic(), 5.0)))
                sock.connect(addr)
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    def _drop(self, sock: _socket.socket | None = None) -> None:
        sock = sock or self._sock
        if sock is not None:
            sock.close()
        self._sock = None
        self._replies.clear()

    def _lost_at(self) -> float:
        return self.last_heard + self.timeout

    # -- packets ------------------------------------------------------------

    def _read_packet(self, deadline: float | None) -> bytes:
        """One packet's payload; Disconnected on EOF, error or the deadline."""
        while True:
            if len(self._buf) >= 4:
                size = jute.unpack_int(bytes(self._buf[:4]))
                if not 0 <= size <= _MAX_PACKET:
                    raise Disconnected(f"bad packet length {size}")
                if len(self._buf) >= 4 + size:
                    payload = bytes(self._buf[4:4 + size])
                    del self._buf[:4 + size]
                    return payload
            self._fill(deadline)

    def _fill(self, deadline: float | None) -> None:
        sock = self._sock
        if sock is None:
            raise Disconnected("not connected")
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        poller = select.poll()
        poller.register(sock.fileno(), _READ)
        if not poller.poll(None if wait is None else wait * 1000):
            raise Disconnected("ZooKeeper did not answer in time")
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            raise Disconnected(f"connection to ZooKeeper failed: {exc}") from None
        if not chunk:
            raise Disconnected("ZooKeeper closed the connection")
        self._buf += chunk

    def _dispatch(self, payload: bytes) -> None:
        xid, zxid, err = jute.parse_reply_header(payload)
        self.last_heard = time.monotonic()
        if zxid > 0:
            self._zxid = zxid
        if xid == jute.WATCH_XID:
            self.events.append(jute.parse_event(payload))
        elif xid != jute.PING_XID:
            self._replies[xid] = (err, payload)

    def _receive(self, deadline: float | None) -> None:
        """Read and dispatch at least one packet (and all that are buffered)."""
        try:
            self._dispatch(self._read_packet(deadline))
            while len(self._buf) >= 4:
                size = jute.unpack_int(bytes(self._buf[:4]))
                if len(self._buf) < 4 + size:
                    break
                self._dispatch(self._read_packet(deadline))
        except (Disconnected, jute.JuteError) as exc:
            self._drop()
            raise Disconnected(str(exc)) from None

    # -- requests -----------------------------------------------------------

    def path(self, path: str) -> str:
        """``path`` as the server names it (under the chroot)."""
        return self.chroot + path if self.chroot else path

    def strip(self, path: str) -> str:
        """A path the server returned, without the chroot."""
        return path[len(self.chroot):] if self.chroot and path.startswith(self.chroot) else path

    def send(self, op: int, body: bytes = b"") -> int:
        """Send one request; its xid, for :meth:`reply`. Disconnected if down."""
        sock = self._sock
        if sock is None:
            raise Disconnected("not connected to ZooKeeper")
        self._xid += 1
        try:
            sock.sendall(jute.request(self._xid, op, body))
        except OSError as exc:
            self._drop()
            raise Disconnected(f"sending to ZooKeeper failed: {exc}") from None
        self._last_sent = time.monotonic()
        return self._xid

    def reply(self, xid: int, path: str = "") -> bytes:
        """The reply to request ``xid`` (ReplyError for an error code), waited
        for at most two thirds of the session timeout."""
        deadline = time.monotonic() + self.timeout * 2 / 3
        while xid not in self._replies:
            if self._sock is None:
                raise Disconnected("the connection to ZooKeeper dropped")
            self._receive(deadline)
        err, payload = self._replies.pop(xid)
        if err == jute.SESSION_EXPIRED:
            raise SessionLost("the ZooKeeper session expired")
        if err != jute.OK:
            raise ReplyError(err, path)
        return payload

    def call(self, op: int, body: bytes = b"", path: str = "") -> bytes:
        return self.reply(self.send(op, body), path)

    # -- waiting ------------------------------------------------------------

    def step(self, timeout: float | None, fds: Sequence[int] = ()) -> list[int]:
        """Wait up to ``timeout`` for the socket or ``fds``; the ready ``fds``.

        Reads what the server sent (watch events land in :attr:`events`),
        pings when due, and reconnects after a drop (one host per call).
        Raises SessionLost when the session is gone."""
        now = time.monotonic()
        if self._sock is None:
            if now >= self._lost_at():
                raise SessionLost("ZooKeeper was unreachable for longer than the session timeout")
            limit = min(self._lost_at(), now + (timeout if timeout is not None else 1.0))
            if not self._attempt(limit):
                return _ready(fds, min(0.1, max(0.0, limit - time.monotonic())))
            return _ready(fds, 0.0)
        if now - self.last_heard > self.timeout:  # we were stopped, or starved
            self._drop()
            return _ready(fds, 0.0)
        ping_at = self._last_sent + self.timeout / 3
        dead_at = self.last_heard + self.timeout * 2 / 3
        wake = min(ping_at, dead_at)
        if timeout is not None:
            wake = min(wake, now + timeout)
        poller = select.poll()
        poller.register(self._sock.fileno(), _READ)
        for fd in fds:
            poller.register(fd, _READ)
        events = poller.poll(max(0.0, wake - now) * 1000)
        ready = [fd for fd, _ in events if fd in fds]
        if any(fd == self._sock.fileno() for fd, _ in events):
            try:
                self._receive(time.monotonic() + self.timeout / 3)
            except Disconnected:
                return ready
        self._keepalive()
        return ready

    def _keepalive(self) -> None:
        now = time.monotonic()
        if self._sock is None:
            return
        if now - self.last_heard > self.timeout * 2 / 3:
            self._drop()  # kazoo's read timeout: the connection is dead
        elif now - self._last_sent >= self.timeout / 3:
            try:
                self._sock.sendall(jute.request(jute.PING_XID, jute.PING))
                self._last_sent = now
            except OSError:
                self._drop()

    def close(self) -> None:
        """End the session (the server deletes its ephemeral nodes first)."""
        if self._sock is None:
            return
        try:
            self.call(jute.CLOSE)
        except (ConnectError, ReplyError):
            pass
        finally:
            self._drop()


def _ready(fds: Sequence[int], timeout: float) -> list[int]:
    if not fds:
        if timeout > 0:
            time.sleep(timeout)
        return []
    poller = select.poll()
    for fd in fds:
        poller.register(fd, _READ)
    return [fd for fd, _ in poller.poll(timeout * 1000)]
