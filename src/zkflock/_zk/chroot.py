"""A chroot named in the hosts string (``h1:2181,h2:2181/app``) that does not
exist yet is created, as persistent nodes with the session's ACL.

kazoo only warns ("No chroot path exists", a ``UserWarning`` that a command
would print) and then fails on the first create below it, for a chroot of two
levels or more. The fast path (``_zk/lite.py``) creates it the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

from kazoo.client import KazooClient


def start_quietly(client: KazooClient, timeout: float) -> None:
    """``client.start`` without kazoo's missing-chroot warning (we create it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No chroot path exists")
        client.start(timeout=timeout)


def ensure_chroot(client: KazooClient, hosts: str, timeout: float, **kwargs: Any) -> None:
    """Create ``client``'s chroot if missing, through a short-lived client of
    the same servers, credentials and ACL that is not chrooted (only then)."""
    if not client.chroot or client.exists("/") is not None:
        return
    root = KazooClient(hosts=hosts.partition("/")[0], timeout=timeout, **kwargs)
    root.start(timeout=timeout)
    try:
        root.ensure_path(client.chroot)
    finally:
        root.stop()
        root.close()
