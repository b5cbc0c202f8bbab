"""``zkflock run`` on the fast path: connect, lock, run the command, end.

The same behaviour as the full path (``_cli/locks.py`` + ``_cli/runner.py``):
the same messages and exit codes, ``ZKFLOCK_LOCK``/``ZKFLOCK_TOKEN``, the
command in a process group of its own (given the terminal when zkflock has
it), SIGINT/SIGTERM/SIGHUP forwarded to it, and on a lost session SIGTERM,
then SIGKILL after --grace, exit 75. One thread: one ``poll(2)`` waits on the
ZooKeeper socket, the child's pidfd and the ping timer together.

Signals go through ``_signal`` and sockets through ``_socket`` (the C modules):
``signal`` and ``socket`` import ``enum``, which costs a start more than
everything below does.
"""

from __future__ import annotations

import os
import select
import sys
import time

from zkflock._cli.fastexit import (
    EX_LOCK_LOST,
    EX_NOPERM,
    EX_OSERR,
    EX_UNAVAILABLE,
    EX_USAGE,
    PURPOSE_MAX,
    child_exit_code,
)
from zkflock._cli.fastlock import acquire
from zkflock._config import resolve
from zkflock._errors import (
    AuthFailedError,
    ConfigError,
    ConnectError,
    PermissionDeniedError,
    SessionExpiredError,
    ZkflockError,
)
from zkflock._locks.drivers import EXCLUSIVE_DRIVER, READ_DRIVER, semaphore_driver
from zkflock._names import lock_parent, normalize_name
from zkflock._zk.lite import LiteSession, SessionLost

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable, Sequence

    from zkflock._cli.flockargs import RunArgs
    from zkflock._config import Settings
    from zkflock._locks.drivers import Driver
    from zkflock._security import Credentials
else:
    import _signal

FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP)
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


class Interrupted(BaseException):
    """A forwarded signal arrived while waiting for the lock."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def say(message: str) -> None:
    sys.stderr.write(f"zkflock: {message}\n")
    sys.stderr.flush()


def shell_join(argv: Sequence[str]) -> str:
    """``shlex.join`` without ``shlex`` (and its ``re``): the lock's purpose."""
    return " ".join(a if a and set(a) <= _SAFE else "'" + a.replace("'", "'\"'\"'") + "'"
                    for a in argv)


def fast_run(args: RunArgs, hosts: str | None, root: str | None) -> int:
    """``zkflock run`` with ``args``; its exit code."""
    try:
        settings = resolve(hosts, root=root)
        session, creds = _session(settings)
    except (ConfigError, ValueError) as err:
        say(f"error: {err}")
        return EX_USAGE
    try:
        session.open(settings.connect_timeout)
    except AuthFailedError as err:
        say(f"error: {err}")
        return EX_NOPERM
    except ConnectError:
        say(f"error: cannot reach ZooKeeper at {settings.hosts} within "
            f"{settings.connect_timeout} s: check that it runs ('zkflock server status') and "
            "--hosts/ZKFLOCK_HOSTS; a TLS-only server needs --tls-ca")
        return EX_UNAVAILABLE
    try:
        if creds is not None:
            from zkflock._cli.fastauth import check

            check(session, settings.namespace, creds)
        return _locked_run(session, settings, args)
    except (AuthFailedError, PermissionDeniedError) as err:
        say(f"error: {err}")
        return EX_NOPERM
    finally:
        session.close()


def _session(settings: Settings) -> tuple[LiteSession, Credentials | None]:
    """The lite session, with digest credentials and their ACL when given."""
    if not any(os.environ.get(var) for var in ("ZKFLOCK_AUTH", "ZKFLOCK_AUTH_FILE")):
        return LiteSession(settings.hosts, settings.session_timeout), None
    from zkflock._cli.fastauth import credentials

    found = credentials()
    if found is None:
        return LiteSession(settings.hosts, settings.session_timeout), None
    creds, (auth, acl) = found
    return LiteSession(settings.hosts, settings.session_timeout, auth=auth, acl=acl), creds


def _driver(args: RunArgs) -> Driver:
    if args.max_holders is not None:
        return semaphore_driver(args.max_holders)
    return READ_DRIVER if args.shared else EXCLUSIVE_DRIVER


def _locked_run(session: LiteSession, settings: Settings, args: RunArgs) -> int:
    try:
        name = normalize_name(args.lock, settings.root)
        purpose = shell_join(args.argv)[:PURPOSE_MAX]
        with _Handlers(_interrupt):
            held = acquire(session, lock_parent(name, settings.namespace), _driver(args),
                           purpose, args.wait)
        if held is None:
            return args.conflict_exit_code  # silent, as flock is
        env = dict(os.environ, ZKFLOCK_LOCK=name, ZKFLOCK_TOKEN=str(held[1]))
        pid = spawn(args.argv, env)
    except Interrupted as stop:
        return 128 + stop.signum
    except (ZkflockError, OSError) as err:
        say(f"error: {err}")
        return _error_code(err)
    code, lost = supervise(session, pid, args.grace)
    if lost:
        say(f"error: lock {name!r} was lost while the command ran; {lost}; its work may "
            "overlap with the next holder's: check it, then run it again")
    return code


def _error_code(err: BaseException) -> int:
    if isinstance(err, ConfigError):
        return EX_USAGE
    if isinstance(err, PermissionDeniedError):
        return EX_NOPERM
    if isinstance(err, SessionExpiredError):
        return EX_LOCK_LOST
    if isinstance(err, (ConnectError, _ExecFailed)):
        return EX_UNAVAILABLE
    return EX_OSERR if isinstance(err, OSError) else 1


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


class _Handlers:
    """``handler`` for SIGINT/SIGTERM/SIGHUP while inside, the old ones after."""

    def __init__(self, handler: Callable[[int, object], None]) -> None:
        self._handler = handler
        self._old: list[_signal._HANDLER] = []

    def __enter__(self) -> None:
        self._old = [_signal.signal(sig, self._handler) for sig in FORWARDED]

    def __exit__(self, *exc: object) -> None:
        for sig, old in zip(FORWARDED, self._old, strict=True):
            _signal.signal(sig, old)


class _ExecFailed(OSError):
    """The command could not be started (exit 69, as the full path's ExecFailedError)."""


def spawn(argv: Sequence[str], env: dict[str, str]) -> int:
    """Start the command in a process group of its own, as ``subprocess``
    with ``process_group=0`` does (SIGPIPE and SIGXFSZ back to default)."""
    try:
        return os.posix_spawnp(argv[0], list(argv), env, setpgroup=0,
                               setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))
    except FileNotFoundError:
        raise _ExecFailed(f"cannot run {argv[0]!r}: command not found; "
                          "check its name and PATH") from None
    except PermissionError:
        raise _ExecFailed(f"cannot run {argv[0]!r}: permission denied; "
                          "is it executable?") from None


def _signal_group(pgid: int, signum: int) -> None:
    try:  # noqa: SIM105 - contextlib is one more import on the fast path
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def supervise(session: LiteSession, pid: int, grace: float) -> tuple[int, str]:
    """Wait for the child, forwarding signals and keeping the session; stop it
    if the session is lost. (exit code, how it was stopped if the lock was lost)."""
    pidfd = os.pidfd_open(pid)
    reaped: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if not reaped:
            _signal_group(pid, signum)

    try:
        with _Handlers(forward), _Foreground(pid):
            reason = _watch_child(session, pidfd)
            if reason is None:
                reaped.append(pid)
                return _reap(pid), ""
            say(f"{reason}: 1 lock(s) lost")
            if _exited(pidfd):
                code = _reap(pid)
                reaped.append(pid)
                _signal_group(pid, _signal.SIGKILL)
                return EX_LOCK_LOST, (f"it had exited with {code} by the time zkflock "
                                      "saw the loss")
            killed = stop_child(pid, pidfd, grace)
            reaped.append(pid)
            return EX_LOCK_LOST, "so it was stopped with " + (
                "SIGTERM, then SIGKILL" if killed else "SIGTERM")
    finally:
        os.close(pidfd)


def _watch_child(session: LiteSession, pidfd: int) -> str | None:
    """Until the child exits (None) or the session is lost (the reason). A
    child that exits once the session is overdue (zkflock was stopped past
    its timeout) counts as lost: its work overlapped with the next holder's."""
    while True:
        try:
            ready = session.step(None, (pidfd,))
        except SessionLost as lost:
            return str(lost)
        except ZkflockError as err:  # refused on reconnecting: no session to hold the lock
            return f"the ZooKeeper session could not be resumed ({err})"
        if ready:
            if time.monotonic() - session.last_heard > session.timeout:
                return "ZooKeeper was unreachable for longer than the session timeout"
            return None


def _exited(pidfd: int, timeout: float = 0.0) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def _reap(pid: int) -> int:
    return child_exit_code(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))


def stop_child(pid: int, pidfd: int, grace: float) -> bool:
    """SIGTERM to the child's group, SIGKILL after ``grace`` seconds (True if
    needed); the group gets SIGKILL anyway once the child is gone."""
    _signal_group(pid, _signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    while not _exited(pidfd, max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            say(f"the command ignored SIGTERM for {grace:.1f} s; sending SIGKILL")
            killed = True
            break
    _signal_group(pid, _signal.SIGKILL)
    os.waitpid(pid, 0)
    return killed


class _Foreground:
    """At an interactive terminal, the child's group gets the terminal (as a
    shell does) and we take it back after: ``runner.terminal_foreground``."""

    def __init__(self, pgid: int) -> None:
        self._pgid = pgid
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            fd = sys.stdin.fileno()
            if not (os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()):
                return
            os.tcsetpgrp(fd, self._pgid)
            _signal_group(self._pgid, _signal.SIGCONT)
            self._fd = fd
        except (OSError, ValueError, AttributeError):
            self._fd = None

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        old = _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTTOU})
        try:
            os.tcsetpgrp(self._fd, os.getpgrp())
        except OSError:
            pass
        finally:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, old)
