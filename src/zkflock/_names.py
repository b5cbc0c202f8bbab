"""Lock and file names: validation, normalisation, and their znode paths.

A name is a path relative to the shared root (``data/data.txt``). Hosts mount
the shared volume at different places, so the name, never an absolute mount
point, identifies a lock. Names are normalised (Unicode NFC, ``a//b`` and
``./a`` collapse) and then mapped injectively onto one znode name each, by
percent-escaping ``%`` and ``/``; one flat level of lock parents means no
directory znodes pile up per path component.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence

from zkflock._errors import InvalidNameError

DEFAULT_NAMESPACE = "/zkflock"
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255


def _bad_char(ch: str) -> bool:
    """Characters ZooKeeper refuses in a path, or that a terminal would hide."""
    code = ord(ch)
    category = unicodedata.category(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return True
    if 0xD800 <= code <= 0xF8FF or 0xFFF0 <= code <= 0xFFFF:
        return True  # surrogates, private use and specials: refused by ZooKeeper
    # Bidirectional overrides and other invisible format characters let two
    # names look alike on screen (Trojan Source style); refuse them.
    return category in ("Cf", "Zl", "Zp")


def normalize_name(name: str, root: str | None = None) -> str:
    """Validate ``name`` and return its canonical relative form.

    ``root``, when given, lets an absolute path that lies inside it be named;
    any other absolute path is refused.

    >>> normalize_name("data//./data.txt")
    'data/data.txt'
    """
    if not isinstance(name, str):
        raise InvalidNameError(repr(name), "a name must be a string")
    original = name
    if "\x00" in name:
        raise InvalidNameError(original, "it contains NUL")
    name = unicodedata.normalize("NFC", name)
    for ch in name:
        if _bad_char(ch):
            raise InvalidNameError(original, f"it contains the control character U+{ord(ch):04X}")
    if name.startswith("/"):
        name = _relative_to_root(original, name, root)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidNameError(original, "it is empty")
    for part in parts:
        if part == "..":
            raise InvalidNameError(original, "'..' would leave the shared root")
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise InvalidNameError(
                original, f"a component is longer than {MAX_COMPONENT_BYTES} bytes"
            )
    result = "/".join(parts)
    if len(result.encode()) > MAX_NAME_BYTES:
        raise InvalidNameError(original, f"it is longer than {MAX_NAME_BYTES} bytes")
    return result


def _relative_to_root(original: str, name: str, root: str | None) -> str:
    if root is None:
        raise InvalidNameError(original, "absolute paths are not names; name it relative to --root")
    from pathlib import PurePosixPath  # only here: it costs a command start ~4 ms of imports

    root_path = PurePosixPath(os.path.normpath(root))
    path = PurePosixPath(os.path.normpath(name))
    try:
        return str(path.relative_to(root_path))
    except ValueError:
        raise InvalidNameError(original, f"it lies outside the shared root {root}") from None


def encode_node_name(name: str) -> str:
    """Map a normalised name onto one znode name, injectively."""
    return name.replace("%", "%25").replace("/", "%2F")


def decode_node_name(node: str) -> str:
    """Inverse of :func:`encode_node_name`."""
    return node.replace("%2F", "/").replace("%25", "%")


def validate_namespace(namespace: str) -> str:
    """Check a namespace such as ``/zkflock``: absolute, no trailing slash."""
    if not namespace.startswith("/") or namespace.endswith("/") or "//" in namespace:
        raise InvalidNameError(namespace, "a namespace is an absolute znode path like /zkflock")
    for part in namespace.split("/")[1:]:
        if part in (".", "..") or any(_bad_char(ch) for ch in part):
            raise InvalidNameError(namespace, "a namespace component is not allowed")
    return namespace


def lock_parent(name: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The znode under which contenders for lock ``name`` queue."""
    return f"{namespace}/locks/{encode_node_name(name)}"


def file_meta_path(name: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The znode holding a fenced file's metadata."""
    return f"{namespace}/files/{encode_node_name(name)}"


def describe_names(names: Sequence[str], shown: int = 3) -> str:
    """A few names for a message: ``"a, b, c … and 4,997 more"``."""
    head = ", ".join(names[:shown])
    rest = len(names) - shown
    return head if rest <= 0 else f"{head} … and {rest:,} more"
