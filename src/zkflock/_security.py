"""Credentials, ACL policy and TLS settings: pure, no kazoo.

Credentials come from the ``auth=`` argument, then ``ZKFLOCK_AUTH``
(``user:password``), then the file named by ``ZKFLOCK_AUTH_FILE`` (one line,
``user:password``), so a secret never has to appear on a command line or in
``ps``. Like ssh with a private key, an auth file that its group or others
may read is refused: a secret that every local user can read is no secret.

ACLs: without credentials zkflock keeps ZooKeeper's open ACL (anyone may do
anything), as kazoo does. With credentials every node zkflock creates gets
the policy's ACL; by default the creating identity may do everything and
everyone else may only read. ZooKeeper checks a *delete* against the
*parent's* ACL, so the ACL of a lock parent decides who may remove (steal)
a holder's node: only the owner, the group and the admin.

ZooKeeper's digest scheme never rejects a password at connect time (a wrong
password is just another identity), so :func:`check_identity` compares our
identity with the namespace node's ACL instead: an entry for our user name
that is not our identity means the password is wrong (AuthFailedError).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zkflock._errors import AuthFailedError, ConfigError

if TYPE_CHECKING:
    from zkflock._config import Settings
    from zkflock._zk.client import ZkClient

# ZooKeeper's permission bits (ZooDefs.Perms).
READ, WRITE, CREATE, DELETE, ADMIN = 1, 2, 4, 8, 16
ALL = READ | WRITE | CREATE | DELETE | ADMIN
GROUP_PERMS = READ | WRITE | CREATE | DELETE  # everything but changing ACLs

AclEntry = tuple[str, str, int]  # (scheme, id, perms), built into kazoo ACLs by _zk.client

AUTH_VAR = "ZKFLOCK_AUTH"
AUTH_FILE_VAR = "ZKFLOCK_AUTH_FILE"
TLS_VARS = ("ZKFLOCK_TLS_CA", "ZKFLOCK_TLS_CERT", "ZKFLOCK_TLS_KEY")


def digest_id(user: str, password: str) -> str:
    """ZooKeeper's digest identity ``user:base64(sha1(user:password))``."""
    raw = hashlib.sha1(f"{user}:{password}".encode()).digest()  # ZooKeeper's digest scheme is SHA-1
    return f"{user}:{base64.b64encode(raw).decode()}"


@dataclass(frozen=True)
class Credentials:
    """A digest identity; the password never shows in ``repr``."""

    user: str
    password: str = field(repr=False)

    @property
    def id(self) -> str:
        return digest_id(self.user, self.password)

    def auth_data(self) -> list[tuple[str, str]]:
        return [("digest", f"{self.user}:{self.password}")]


def parse_credentials(value: str, where: str) -> Credentials:
    """``user:password`` (or ``digest:user:password``) -> Credentials."""
    text = value.strip()
    if text.startswith("digest:") and text.count(":") >= 2:
        text = text[len("digest:"):]
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{where} must look like 'user:password' (digest scheme)")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in user):
        raise ConfigError(f"{where}: the user name must not contain spaces or control characters")
    return Credentials(user, password)


def read_auth_file(path: str) -> Credentials:
    """Credentials from a file only its owner may read (else ConfigError)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot read the auth file {path} ({AUTH_FILE_VAR}): {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the auth file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"the auth file {path} may be read by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):o}); run 'chmod 600 {path}'"
            )
        raw = os.read(fd, 65536)
    finally:
        os.close(fd)
    try:
        lines = [ln for ln in raw.decode().splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise ConfigError(f"the auth file {path} is not UTF-8 text") from None
    if len(lines) != 1:
        raise ConfigError(f"the auth file {path} must hold one line 'user:password'")
    return parse_credentials(lines[0], f"the auth file {path}")


def resolve_credentials(
    auth: Sequence[tuple[str, str]] | tuple[str, str] | str | None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The ``auth`` argument, then ``ZKFLOCK_AUTH``, then ``ZKFLOCK_AUTH_FILE``."""
    env = os.environ if environ is None else environ
    if auth is None:
        if env.get(AUTH_VAR):
            return parse_credentials(env[AUTH_VAR], AUTH_VAR)
        if env.get(AUTH_FILE_VAR):
            return read_auth_file(env[AUTH_FILE_VAR])
        return None
    if isinstance(auth, str):
        return parse_credentials(auth, "auth")
    pairs = [auth] if len(auth) == 2 and isinstance(auth[0], str) else list(auth)
    if len(pairs) != 1:
        raise ConfigError("auth takes one identity: ('digest', 'user:password')")
    scheme, credential = pairs[0]
    if scheme != "digest":
        raise ConfigError(f"auth scheme {scheme!r} is not supported; use ('digest', 'user:pw')")
    return parse_credentials(str(credential), "auth")


def _check_id(value: str, what: str) -> str:
    user, sep, digest = value.partition(":")
    if not sep or not user or len(digest) != 28 or not digest.endswith("="):
        raise ConfigError(
            f"{what} {value!r} is not a digest id 'user:BASE64'; make one with "
            "zkflock.AclPolicy.digest_id(user, password)"
        )
    return value


@dataclass(frozen=True)
class AclPolicy:
    """Who may do what with the nodes zkflock creates (used only with auth).

    ``owner``: digest id with every right (None: the connecting identity);
    ``group``: ids that may take locks and write files (all but ADMIN);
    ``admin``: an id with every right, e.g. to break a dead host's locks;
    ``world_read``: everyone may read (``zkflock status`` without credentials).

    >>> bob = AclPolicy.digest_id("bob", "secret")
    >>> policy = AclPolicy(group=(bob,), world_read=False)
    """

    owner: str | None = None
    group: tuple[str, ...] = ()
    admin: str | None = None
    world_read: bool = True

    digest_id = staticmethod(digest_id)

    def __post_init__(self) -> None:
        if isinstance(self.group, str):  # type: ignore[unreachable]  # a common slip
            raise ConfigError("AclPolicy.group is a sequence of digest ids, not one string")
        object.__setattr__(self, "group", tuple(self.group))
        for value in (self.owner, self.admin, *self.group):
            if value is not None:
                _check_id(value, "an AclPolicy identity")

    def entries(self, creds: Credentials) -> list[AclEntry]:
        """The ACL for nodes created by ``creds``."""
        me = creds.id
        if me not in {self.owner or me, self.admin, *self.group}:
            raise ConfigError(
                f"the ACL policy leaves out the connecting identity {creds.user!r}: it could "
                "not delete its own lock nodes; add it to owner, group or admin"
            )
        acl: list[AclEntry] = [("digest", self.owner or me, ALL)]
        if self.admin and self.admin != acl[0][1]:
            acl.append(("digest", self.admin, ALL))
        acl += [("digest", g, GROUP_PERMS) for g in self.group if g not in (self.owner or me,)]
        if self.world_read:
            acl.append(("world", "anyone", READ))
        return acl


def resolve_acl(policy: AclPolicy | None, creds: Credentials | None) -> list[AclEntry] | None:
    """The ACL entries for new nodes, or None for ZooKeeper's open ACL (no auth)."""
    if creds is None:
        if policy is not None:
            raise ConfigError("an ACL policy needs credentials: pass auth= or set ZKFLOCK_AUTH")
        return None
    return (policy or AclPolicy()).entries(creds)


@dataclass(frozen=True)
class TLSConfig:
    """TLS to ZooKeeper: the CA that signed the servers' certificates and,
    for servers that demand client certificates, ours.

    >>> tls = TLSConfig(ca="ca.pem", cert="client.crt", key="client.key")  # doctest: +SKIP
    """

    ca: str
    cert: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("TLS needs both a client certificate and its key, or neither")
        for what, path in (("CA", self.ca), ("certificate", self.cert), ("key", self.key)):
            if path is None:
                continue
            object.__setattr__(self, _field_of(what), os.fspath(path))
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise ConfigError(f"TLS {what} file {path} does not exist or is not readable")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TLSConfig | None:
        """From ``ZKFLOCK_TLS_CA``/``_CERT``/``_KEY``; None when none is set."""
        env = os.environ if environ is None else environ
        ca, cert, key = (env.get(v) or None for v in TLS_VARS)
        if ca is None:
            if cert or key:
                raise ConfigError("ZKFLOCK_TLS_CERT/KEY need ZKFLOCK_TLS_CA too")
            return None
        return cls(ca=ca, cert=cert, key=key)

    def kazoo_kwargs(self) -> dict[str, object]:
        return {"use_ssl": True, "verify_certs": True, "ca": self.ca,
                "certfile": self.cert, "keyfile": self.key}


def _field_of(what: str) -> str:
    return {"CA": "ca", "certificate": "cert", "key": "key"}[what]


def resolve_tls(
    tls: TLSConfig | None, environ: Mapping[str, str] | None = None
) -> TLSConfig | None:
    if tls is not None and not isinstance(tls, TLSConfig):
        raise ConfigError("tls must be a zkflock.TLSConfig(ca=..., cert=..., key=...)")
    return tls if tls is not None else TLSConfig.from_env(environ)


def check_identity(zk: ZkClient, namespace: str, creds: Credentials) -> None:
    """Fail fast with AuthFailedError when the password is wrong.

    The namespace node's ACL names the identities that use it. An entry for
    our user name that is not our identity means a wrong password. ZooKeeper
    masks the hash as ``user:x`` for callers without ADMIN; then a probe
    tells: deleting a child that does not exist answers NoNode when we hold
    DELETE on the node and NoAuth when we do not (the parent's ACL is
    checked first), and changes nothing either way.
    """
    acl = zk.get_acl(namespace)
    if acl is None:  # no namespace yet, or we may not read its ACL: nothing to compare
        return
    mine = [(ident, perms) for scheme, ident, perms in acl
            if scheme == "digest" and ident.partition(":")[0] == creds.user]
    if not mine or any(ident == creds.id for ident, _ in mine):
        return
    masked = [perms for ident, perms in mine if ident == f"{creds.user}:x"]
    if masked and all(p & DELETE for p in masked) and zk.may_delete_under(namespace):
        return
    if masked and not any(p & DELETE for p in masked):
        return  # cannot tell without changing anything; later refusals say NoAuth
    raise AuthFailedError(
        f"ZooKeeper knows user {creds.user!r} with another password (the ACL of {namespace} "
        "does not match): check ZKFLOCK_AUTH / ZKFLOCK_AUTH_FILE"
    )


def open_client(
    settings: Settings,
    *,
    auth: Sequence[tuple[str, str]] | tuple[str, str] | str | None,
    tls: TLSConfig | None,
    acl: AclPolicy | None,
) -> ZkClient:
    """Resolve auth, ACL and TLS (arguments, then ``ZKFLOCK_*``), connect,
    and check the password against the namespace before anything is created."""
    from zkflock._zk.client import ZkClient

    creds = resolve_credentials(auth)
    entries = resolve_acl(acl, creds)
    tls_config = resolve_tls(tls)
    zk = ZkClient.connect(
        settings.hosts,
        session_timeout=settings.session_timeout,
        connect_timeout=settings.connect_timeout,
        auth=creds.auth_data() if creds else (),
        acl=entries,
        tls=tls_config.kazoo_kwargs() if tls_config else None,
    )
    if creds is not None:
        try:
            check_identity(zk, settings.namespace, creds)
        except BaseException:
            zk.close()
            raise
    return zk
