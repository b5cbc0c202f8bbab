"""The child-process supervisor of ``zkflock run``.

It runs the command (of ``zkflock run`` and ``zkflock edit``) while the lock
is held, forwards SIGINT/SIGTERM/SIGHUP to it, and stops it when the lock is
lost: SIGTERM, then SIGKILL after a grace period, as ``consul lock`` does
(``etcdctl lock`` leaves the child running, which its users report as a
bug). The exit-code mapping is a pure function.

Exit codes, as flock(1) and sysexits(3) use them::

    the child's own status      it ran and exited
    128 + N                     signal N killed it (the shell's convention)
    -E CODE (default 1)         conflict (-n) or timeout (-w), as flock(1)
    64  EX_USAGE                bad arguments or lock name
    65  EX_DATAERR              a fenced file is damaged (edit)
    69  EX_UNAVAILABLE          ZooKeeper unreachable, or the command could not be executed
    71  EX_OSERR                another operating-system error
    75  EX_TEMPFAIL             the lock was lost while the command ran (it was stopped),
                                the session expired, or an edit's fenced commit was
                                refused: nothing committed
    77  EX_NOPERM               ZooKeeper refused our credentials or our identity (ACL)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from zkflock._cli.fastexit import DEFAULT_GRACE as DEFAULT_GRACE
from zkflock._cli.fastexit import EX_DATAERR as EX_DATAERR
from zkflock._cli.fastexit import EX_LOCK_LOST as EX_LOCK_LOST
from zkflock._cli.fastexit import EX_NOPERM as EX_NOPERM
from zkflock._cli.fastexit import EX_OSERR as EX_OSERR
from zkflock._cli.fastexit import EX_UNAVAILABLE as EX_UNAVAILABLE
from zkflock._cli.fastexit import EX_USAGE as EX_USAGE
from zkflock._cli.fastexit import child_exit_code as child_exit_code
from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    FileCorruptError,
    LockLostError,
    LockNotHeldError,
    LockTimeoutError,
    PermissionDeniedError,
    SessionExpiredError,
    StaleTokenError,
    ZkflockError,
)

if TYPE_CHECKING:
    from zkflock._locks.lock import Lock

log = logging.getLogger("zkflock")

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_INTERVAL = 0.2


class ExecFailedError(ZkflockError):
    """The command could not be started (not found, not executable)."""

    exit_code = EX_UNAVAILABLE


class Interrupted(KeyboardInterrupt):
    """A forwarded signal arrived before the child ran (while waiting for the lock).

    A KeyboardInterrupt subclass so the lock's acquire loop re-raises it
    unchanged after deleting our queue node.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def error_exit_code(err: BaseException, conflict_code: int = 1) -> int:
    """Our exit code for an error raised before or around the child."""
    if isinstance(err, Interrupted):
        return 128 + err.signum
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    if isinstance(err, LockTimeoutError):
        return conflict_code
    if isinstance(err, ConfigError):
        return EX_USAGE
    if isinstance(err, (AuthFailedError, PermissionDeniedError)):
        return EX_NOPERM
    if isinstance(err, SessionExpiredError):  # every lock of the session is gone
        return EX_LOCK_LOST
    if isinstance(err, (ConnectError, ExecFailedError)):
        return EX_UNAVAILABLE
    if isinstance(err, (LockLostError, StaleTokenError)):
        return EX_LOCK_LOST
    if isinstance(err, FileCorruptError):
        return EX_DATAERR
    if isinstance(err, OSError):
        return EX_OSERR
    return 1


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While waiting for the lock, turn SIGINT/SIGTERM/SIGHUP into ``Interrupted``,
    so our queue node is deleted at once rather than left for the session timeout."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    with _handlers(handler):
        yield


class SignalGate:
    """SIGINT/SIGTERM/SIGHUP while zkflock itself is at work, around a child.

    Until ``hold()``: a signal raises ``Interrupted`` (waiting for the lock,
    our node is deleted at once). After it: a signal is kept until the gate
    closes and only then raises ``Interrupted`` — so a fenced commit that
    started once the child exited 0 is never cut in half. ``supervise``
    forwards signals to the child meanwhile and puts this handler back.
    """

    def __init__(self) -> None:
        self._holding = False
        self._held: int | None = None
        self._stack = contextlib.ExitStack()

    def hold(self) -> None:
        self._holding = True

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if not self._holding:
            raise Interrupted(signum)
        if self._held is None:
            self._held = signum

    def __enter__(self) -> SignalGate:
        self._stack.enter_context(_handlers(self._handler))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._held is not None and exc[0] is None:
            raise Interrupted(self._held)


@contextlib.contextmanager
def _handlers(handler: signal._HANDLER) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the command in a process group of its own; ExecFailedError when it
    cannot be executed.

    Its own group lets us signal the whole tree (``sh -c 'a | b'``, a script's
    children) on forwarding and, above all, on lock loss: a grandchild left
    running would go on writing after the lock was handed on. ``timeout(1)``
    does the same.
    """
    try:
        return subprocess.Popen(list(argv), env=dict(env), process_group=0)
    except FileNotFoundError:
        raise ExecFailedError(
            f"cannot run {argv[0]!r}: command not found; check its name and PATH"
        ) from None
    except PermissionError:
        raise ExecFailedError(
            f"cannot run {argv[0]!r}: permission denied; is it executable?"
        ) from None


@contextlib.contextmanager
def terminal_foreground(pgid: int) -> Iterator[None]:
    """At an interactive terminal, make the child's group the foreground one
    (as a shell does), so it can read the terminal and gets Ctrl-C itself."""
    fd = _foreground_tty()
    if fd is None:
        yield
        return
    try:
        os.tcsetpgrp(fd, pgid)
        # It may have tried to read before the handoff and been stopped (SIGTTIN).
        _signal_group(pgid, signal.SIGCONT)
    except OSError:
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            # We are a background group now: taking the terminal back would
            # stop us with SIGTTOU unless it is blocked.
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
            try:
                with contextlib.suppress(OSError):
                    os.tcsetpgrp(fd, os.getpgrp())
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _foreground_tty() -> int | None:
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def lock_gone(lock: Lock) -> bool:
    """True once the lock is lost for certain (not merely suspended).

    A suspended connection makes ``is_held`` False but keeps the token; the
    session declares the loss (and forgets the token) once the session timeout
    has passed without a server, or when the server says the session expired.
    """
    if lock.is_held:
        return False
    try:
        lock.token  # noqa: B018 - raises once the loss is declared
    except LockNotHeldError:
        return True
    return False


@dataclass(frozen=True)
class RunResult:
    """How the child ended: the exit code for ``zkflock run``, and why."""

    exit_code: int
    lock_lost: bool = False
    killed: bool = False  # SIGTERM was not enough: SIGKILL after the grace period
    finished: int | None = None  # lock lost, but the child had exited by itself (its code)

    def lost_message(self, name: str) -> str:
        """What to tell the user when the lock was lost while the child ran."""
        if self.finished is not None:
            how = f"it had exited with {self.finished} by the time zkflock saw the loss"
        else:
            how = "so it was stopped with " + ("SIGTERM, then SIGKILL" if self.killed
                                               else "SIGTERM")
        return f"lock {name!r} was lost while the command ran; {how}"


def supervise(
    proc: subprocess.Popen[bytes],
    lock: Lock,
    *,
    grace: float = DEFAULT_GRACE,
    poll_interval: float = POLL_INTERVAL,
) -> RunResult:
    """Wait for the child, forwarding signals; stop it if the lock is lost.

    A child that exits while the lock is already known to be lost (zkflock was
    paused past the session timeout, say) gets 75 too: its work overlapped
    with the next holder's, whatever its own status says."""
    lost = threading.Event()
    lock.add_lost_callback(lambda _lock: lost.set())

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.returncode is None:
            _signal_group(proc.pid, signum)

    with _handlers(forward), terminal_foreground(proc.pid):
        while True:
            try:
                code = child_exit_code(proc.wait(timeout=poll_interval))
            except subprocess.TimeoutExpired:
                pass
            else:
                if lost.is_set() or lock_gone(lock):
                    return RunResult(EX_LOCK_LOST, lock_lost=True, finished=code)
                return RunResult(code)
            # on_lost fires from the session's worker; polling also catches a
            # loss whose callback is late or was registered after it fired.
            if lost.is_set() or lock_gone(lock):
                killed = stop_child(proc, grace)
                return RunResult(EX_LOCK_LOST, lock_lost=True, killed=killed)


def stop_child(proc: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM to the child's group, then SIGKILL after ``grace`` seconds; True
    if SIGKILL was needed. The group gets SIGKILL anyway once the child is gone:
    nothing it started may go on writing without the lock."""
    _signal_group(proc.pid, signal.SIGTERM)
    killed = False
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("the command ignored SIGTERM for %.1f s; sending SIGKILL", grace)
        killed = True
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    return killed
