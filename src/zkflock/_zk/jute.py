"""ZooKeeper's wire format (jute) for the few requests ``zkflock run``'s fast
path sends: connect, ping, close, create/createContainer, getChildren,
getData, setData, delete. Pure functions over ``bytes``, no kazoo.

kazoo's own (``kazoo.protocol.serialization``) costs a command start about
16 ms of imports (it pulls ``kazoo.security``: hashlib, base64, re) for a
dozen ``struct`` calls; the layouts below are ZooKeeper's ``zookeeper.jute``,
the same bytes kazoo sends (``tests/test_fast_run.py`` checks them against it).
"""

from __future__ import annotations

from struct import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# Opcodes (ZooDefs.OpCode) and the fixed xids of ZooKeeper's protocol.
CREATE, DELETE, GET_DATA, SET_DATA, GET_CHILDREN = 1, 2, 4, 5, 8
GET_ACL, PING, CREATE2, CREATE_CONTAINER, AUTH, CLOSE = 6, 11, 15, 19, 100, -11
WATCH_XID, PING_XID, AUTH_XID = -1, -2, -4

# Create flags and the error codes the fast path tells apart (KeeperException.Code).
PERSISTENT, EPHEMERAL_SEQUENTIAL, CONTAINER = 0, 3, 4
OK, NO_NODE, NO_AUTH, NODE_EXISTS, SESSION_EXPIRED, AUTH_FAILED = 0, -101, -102, -110, -112, -115
# Watch event types (Watcher.Event.EventType).
EVENT_DELETED = 2

OPEN_ACL = ((31, "world", "anyone"),)  # ZooDefs.Ids.OPEN_ACL_UNSAFE

_INT = Struct(">i")
_LONG = Struct(">q")
_HEADER = Struct(">ii")          # xid, type
_REPLY = Struct(">iqi")          # xid, zxid, err
_CONNECT = Struct(">iqiq")       # protocol version, last zxid seen, timeout ms, session id
_CONNECTED = Struct(">iiq")      # protocol version, timeout ms, session id
_STAT = Struct(">qqqqiiiqiiq")   # czxid mzxid ctime mtime version cversion aversion
#                                  ephemeralOwner dataLength numChildren pzxid
_EVENT = Struct(">ii")           # type, state


class JuteError(ValueError):
    """A reply that does not parse: the connection is not ZooKeeper's protocol."""


def _buffer(data: bytes) -> bytes:
    return _INT.pack(len(data)) + data


def _string(text: str) -> bytes:
    return _buffer(text.encode())


def framed(payload: bytes) -> bytes:
    """A packet: its length, then the payload."""
    return _INT.pack(len(payload)) + payload


def connect_request(last_zxid: int, timeout_ms: int, session_id: int, passwd: bytes) -> bytes:
    """ConnectRequest (framed): a new session with id 0, or resuming ``session_id``."""
    return framed(_CONNECT.pack(0, last_zxid, timeout_ms, session_id) + _buffer(passwd)
                  + b"\0")


def parse_connected(payload: bytes) -> tuple[int, int, bytes]:
    """ConnectResponse -> (negotiated timeout ms, session id, password).
    A timeout of 0 or less means the session we asked to resume has expired."""
    try:
        _, timeout_ms, session_id = _CONNECTED.unpack_from(payload, 0)
        (size,) = _INT.unpack_from(payload, 16)
    except Exception as exc:
        raise JuteError(f"bad connect response: {exc}") from None
    return timeout_ms, session_id, bytes(payload[20:20 + max(size, 0)])


def request(xid: int, op: int, body: bytes = b"") -> bytes:
    """One request packet (framed): header, then the operation's body."""
    return framed(_HEADER.pack(xid, op) + body)


def create_body(path: str, data: bytes, flags: int,
                acl: Sequence[tuple[int, str, str]] = OPEN_ACL) -> bytes:
    """CreateRequest (also create2's and createContainer's)."""
    acls = b"".join(_INT.pack(perms) + _string(scheme) + _string(ident)
                    for perms, scheme, ident in acl)
    return _string(path) + _buffer(data) + _INT.pack(len(acl)) + acls + _INT.pack(flags)


def auth_body(scheme: str, auth: bytes) -> bytes:
    """AuthPacket (sent with xid AUTH_XID): type 0, the scheme, the credential."""
    return _INT.pack(0) + _string(scheme) + _buffer(auth)


def path_body(path: str) -> bytes:
    """A request that is only a path (getACL)."""
    return _string(path)


def path_watch_body(path: str, watch: bool) -> bytes:
    """getChildren's and getData's body: the path and whether to watch."""
    return _string(path) + (b"\1" if watch else b"\0")


def delete_body(path: str, version: int = -1) -> bytes:
    return _string(path) + _INT.pack(version)


def set_data_body(path: str, data: bytes, version: int = -1) -> bytes:
    return _string(path) + _buffer(data) + _INT.pack(version)


def parse_reply_header(payload: bytes) -> tuple[int, int, int]:
    """(xid, zxid, err) of a reply; the body starts at byte 16."""
    try:
        xid, zxid, err = _REPLY.unpack_from(payload, 0)
        return xid, zxid, err
    except Exception as exc:
        raise JuteError(f"bad reply header: {exc}") from None


def _read_string(payload: bytes, offset: int) -> tuple[str, int]:
    (size,) = _INT.unpack_from(payload, offset)
    offset += 4
    if size < 0:
        return "", offset
    return bytes(payload[offset:offset + size]).decode(), offset + size


def parse_created(payload: bytes) -> tuple[str, int]:
    """create2's reply body (from byte 16): (path, czxid)."""
    path, offset = _read_string(payload, 16)
    return path, _STAT.unpack_from(payload, offset)[0]


def parse_children(payload: bytes) -> list[str]:
    """getChildren's reply body: the children's names."""
    (count,) = _INT.unpack_from(payload, 16)
    offset, names = 20, []
    for _ in range(max(count, 0)):
        name, offset = _read_string(payload, offset)
        names.append(name)
    return names


def parse_data(payload: bytes) -> tuple[bytes, int, int]:
    """getData's reply body: (data, czxid, ephemeralOwner)."""
    (size,) = _INT.unpack_from(payload, 16)
    offset = 20 + max(size, 0)
    stat = _STAT.unpack_from(payload, offset)
    return bytes(payload[20:offset]), stat[0], stat[7]


def parse_acl(payload: bytes) -> list[tuple[str, str, int]]:
    """getACL's reply body: ``(scheme, id, perms)`` per entry."""
    (count,) = _INT.unpack_from(payload, 16)
    offset, acl = 20, []
    for _ in range(max(count, 0)):
        (perms,) = _INT.unpack_from(payload, offset)
        scheme, offset = _read_string(payload, offset + 4)
        ident, offset = _read_string(payload, offset)
        acl.append((scheme, ident, perms))
    return acl


def parse_event(payload: bytes) -> tuple[int, str]:
    """A watch notification's body (after the reply header): (type, path)."""
    event_type, _ = _EVENT.unpack_from(payload, 16)
    path, _ = _read_string(payload, 24)
    return event_type, path


def unpack_int(data: bytes) -> int:
    return int(_INT.unpack(data)[0])
