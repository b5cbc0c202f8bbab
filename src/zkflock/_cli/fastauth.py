"""Digest credentials and ACLs on ``zkflock run``'s fast path, as the full
path's ``_security.open_client`` has them: the same sources (``ZKFLOCK_AUTH``,
then the file of ``ZKFLOCK_AUTH_FILE``/``--auth-file``, mode 600), the same
ACL on every node created (``AclPolicy()``'s default: we may do everything,
others read), and the same check of the password against the namespace's
ACL (``_security.check_identity``) before anything is created.

Imported only when credentials are given: ``_security`` needs hashlib.
"""

from __future__ import annotations

import os

from zkflock._cli.fastlock import checked
from zkflock._security import check_identity, resolve_acl, resolve_credentials
from zkflock._zk import jute
from zkflock._zk.lite import ReplyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from zkflock._security import Credentials
    from zkflock._zk.client import ZkClient
    from zkflock._zk.lite import LiteSession

#: What the lite session needs: (scheme, credential) and the ACL as jute has it.
Auth = tuple[tuple[str, bytes], list[tuple[int, str, str]]]


def credentials() -> tuple[Credentials, Auth] | None:
    """Our credentials from the environment, and what the session sends; None
    without any. ConfigError for a bad value or an auth file others may read."""
    creds = resolve_credentials(None)
    if creds is None:
        return None
    entries = resolve_acl(None, creds) or []
    (scheme, credential), = creds.auth_data()
    return creds, ((scheme, credential.encode()),
                   [(perms, s, ident) for s, ident, perms in entries])


class _AclView:
    """The two reads ``check_identity`` makes, on a lite session."""

    def __init__(self, session: LiteSession) -> None:
        self._session = session

    def get_acl(self, path: str) -> list[tuple[str, str, int]] | None:
        try:
            payload = self._session.call(jute.GET_ACL, jute.path_body(self._session.path(path)),
                                         path)
        except ReplyError as exc:
            if exc.code in (jute.NO_NODE, jute.NO_AUTH):
                return None
            raise checked(exc, f"reading the ACL of {path}") from None
        return jute.parse_acl(payload)

    def may_delete_under(self, path: str) -> bool:
        probe = f"{path}/zkflock-probe-{os.urandom(16).hex()}"
        try:
            self._session.call(jute.DELETE, jute.delete_body(self._session.path(probe)), probe)
        except ReplyError as exc:
            if exc.code == jute.NO_NODE:
                return True
            if exc.code == jute.NO_AUTH:
                return False
            raise checked(exc, f"checking our rights on {path}") from None
        return True  # pragma: no cover - a node with a fresh random name existed


def check(session: LiteSession, namespace: str, creds: Credentials) -> None:
    """AuthFailedError when the password is wrong (``_security.check_identity``)."""
    from typing import cast

    check_identity(cast("ZkClient", _AclView(session)), namespace, creds)
