"""Modules the command loads only when they are used: ``ssl``.

kazoo imports ``ssl`` at start (``kazoo.handlers.utils``,
``kazoo.protocol.connection``) and uses it only to open a TLS connection or
to match an ``ssl.SSLError``. Loading it costs a ``zkflock run`` about as much
CPU as a bare interpreter start. Until then a stand-in module takes its place
in ``sys.modules``: the first attribute anyone reads loads the real module,
which then replaces the stand-in everywhere it was bound.

importlib's LazyLoader cannot do this here: the next ``import ssl`` (kazoo's
own) reads the module's ``__spec__``, which makes it load at once.

Installed only by the command's entry point, never by ``import zkflock``;
the fast path of ``zkflock run`` defers ``inspect`` this way too (``_cli/fast.py``).
"""

from __future__ import annotations

import _thread
import importlib
import sys
import types

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a start ~3 ms
if TYPE_CHECKING:
    from typing import Any

DEFERRED = ("ssl",)

_loading = _thread.allocate_lock()  # threading.Lock itself, without importing threading


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def _load(self) -> types.ModuleType:
        name = self.__name__
        with _loading:
            if sys.modules.get(name) is self:
                del sys.modules[name]
            real = importlib.import_module(name)
            # Later reads through this stand-in find the real names directly.
            self.__dict__.update(real.__dict__)
        return real


def defer(names: tuple[str, ...] = DEFERRED) -> None:
    """Put a stand-in for each of ``names`` not imported yet."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = _Deferred(name)
