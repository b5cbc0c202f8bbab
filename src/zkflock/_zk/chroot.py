"""A chroot named in the hosts string (``h1:2181,h2:2181/app``) that does not
exist yet is created, as persistent nodes with the session's ACL.

kazoo's ``start`` already asks whether the chroot exists, and only warns
("No chroot path exists", a ``UserWarning`` that a command would print); the
first create below it then fails, for a chroot of two levels or more. We take
its answer from that warning (no second round trip) and create the chroot.
The fast path (``_cli/fastlock.ensure_path``) creates it the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

from kazoo.client import KazooClient

_MISSING = "No chroot path exists"


def start_quietly(client: KazooClient, timeout: float) -> bool:
    """``client.start`` without kazoo's missing-chroot warning; whether it
    found the chroot missing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.start(timeout=timeout)
    missing = False
    for warning in caught:
        if str(warning.message).startswith(_MISSING):
            missing = True
        else:  # somebody else's: as if we had not looked
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return missing


def create_chroot(client: KazooClient, hosts: str, timeout: float, **kwargs: Any) -> None:
    """Create ``client``'s chroot through a short-lived client of the same
    servers, credentials and ACL that is not chrooted."""
    root = KazooClient(hosts=hosts.partition("/")[0], timeout=timeout, **kwargs)
    root.start(timeout=timeout)
    try:
        root.ensure_path(client.chroot)
    finally:
        root.stop()
        root.close()
