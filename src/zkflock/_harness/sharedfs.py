"""A GlusterFS volume mounted more than once on one machine: what hosts that
share a volume see of each other's writes, each mount with its own caches
(see SHAREDFS.md for what was measured here).

>>> with GlusterVolume(Path("/tmp/run"), mounts=("", "negative-timeout=2")) as vol:
...     (vol.mounts[0] / "x").write_text("seen on the other mount")   # doctest: +SKIP
...     (vol.mounts[1] / "x").read_text()

One glusterd serves the whole machine (it listens on 127.0.0.1:24007), so
runs in parallel share it and use distinct volumes. The first run starts it,
with its own working directory under ``STATE_DIR``; every run holds a shared
``flock`` on ``users.lock`` while it uses it, and the last one out stops it
by its PID. A glusterd that this module did not start (the system's) is used
and never stopped. Volumes are named ``zkflock-<pid>-<random>``: a volume
whose process died without tearing it down (SIGKILL) is removed by the next
run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from zkflock._errors import ConfigError, ServerStartError

STATE_DIR = Path("/run/zkflock-glusterd")
PORT = 24007
START_TIMEOUT = 90.0  # glusterd took 23 s to answer once with the machine loaded
_CLI_TIMEOUT = 120.0
_BUSY = ("Another transaction is in progress", "Locking failed", "try again after some time")
_NAME = re.compile(r"^zkflock-(\d+)-[0-9a-f]+$")
_BRICK_LOGS = Path("/var/log/glusterfs/bricks")
_RUN_DIRS = Path("/var/run/gluster/vols")

_VOLFILE = """\
volume management
    type mgmt/glusterd
    option working-directory {workdir}
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.socket.listen-port {port}
    option ping-timeout 0
    option event-threads 1
end-volume
"""


def missing_tools() -> list[str]:
    """The GlusterFS programs this module needs that are not installed."""
    return [tool for tool in ("glusterd", "gluster", "mount.glusterfs")
            if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]


def gluster(*args: str, timeout: float = _CLI_TIMEOUT) -> str:
    """Run one ``gluster`` CLI command; retried while another run's command
    holds glusterd's cluster lock. Raises ServerStartError with its output."""
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(["gluster", "--mode=script", *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
        out = (done.stdout + done.stderr).strip()
        if done.returncode == 0:
            return out
        if any(b in out for b in _BUSY) and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        raise ServerStartError(f"'gluster {' '.join(args)}' failed ({done.returncode}): {out}")


def _answers() -> bool:
    """Whether a glusterd listens on 127.0.0.1:24007 and answers the CLI."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        if sock.connect_ex(("127.0.0.1", PORT)) != 0:
            return False
    done = subprocess.run(["gluster", "--mode=script", "--timeout=10", "volume", "list"],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


class GlusterdLease:
    """The right to use this machine's glusterd, which is started if none runs.

    Leaving stops it (SIGTERM, then SIGKILL, by PID) only when this module
    started it and no other run still holds a lease."""

    def __init__(self, state_dir: Path = STATE_DIR) -> None:
        self._dir = state_dir
        self._users: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self._dir / "glusterd.pid"

    @property
    def log_file(self) -> Path:
        return self._dir / "glusterd.log"

    def __enter__(self) -> GlusterdLease:
        if missing_tools():
            raise ConfigError(f"GlusterFS is not installed (no {', '.join(missing_tools())}): "
                              "run 'make setup' (as root), or apt-get install -y "
                              "glusterfs-server glusterfs-client")
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._serialised():
            if not _answers():
                self._start()
            self._users = os.open(self._dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._users, fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._serialised():
            if self._users is not None:
                os.close(self._users)
                self._users = None
            if self._last_user():
                self._stop()

    @contextlib.contextmanager
    def _serialised(self) -> Iterator[None]:
        """One run at a time decides whether to start or stop glusterd."""
        fd = os.open(self._dir / "start.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _last_user(self) -> bool:
        fd = os.open(self._dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    def _start(self) -> None:
        workdir = self._dir / "workdir"
        workdir.mkdir(exist_ok=True)
        volfile = self._dir / "glusterd.vol"
        volfile.write_text(_VOLFILE.format(workdir=workdir, port=PORT))
        self.pid_file.unlink(missing_ok=True)
        # Its own session: a Ctrl-C in the terminal must not stop glusterd
        # before the volume is stopped and deleted.
        self._proc = subprocess.Popen(
            ["glusterd", "-N", "-f", str(volfile), f"--log-file={self.log_file}",
             f"--pid-file={self.pid_file}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.pid_file.write_text(f"{self._proc.pid}\n")  # glusterd writes it late
        try:
            self._wait_ready()
        except BaseException:  # a Ctrl-C too: nobody else knows of this glusterd yet
            self._stop()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise ServerStartError(
                    f"glusterd did not answer on 127.0.0.1:{PORT} within {START_TIMEOUT:.0f} s; "
                    f"see {self.log_file}")
            time.sleep(0.2)

    def _stop(self) -> None:
        """Stop the glusterd this module started (by its recorded PID), if any."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            pid = self._proc.pid if self._proc is not None else 0
        if pid and _alive(pid) and _is_glusterd(pid):
            _terminate(pid)
        if self._proc is not None:
            self._proc.wait(timeout=30)  # reap it: we are its parent
            self._proc = None
        self.pid_file.unlink(missing_ok=True)


def _is_glusterd(pid: int) -> bool:
    """Guards against a PID reused by another program since it was recorded."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "glusterd"
    except FileNotFoundError:
        return False


def _terminate(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


class GlusterVolume:
    """A new GlusterFS volume (one brick under ``base_dir``) mounted once per
    entry of ``mounts``, each a comma-separated string of extra mount options
    (``"negative-timeout=2"``: a 2-s negative-lookup cache). ``mounts[i]`` is
    the i-th mount point; everything is torn down on exit, whatever happened.
    """

    def __init__(self, base_dir: Path, *, mounts: Sequence[str] = ("", "")) -> None:
        self.name = f"zkflock-{os.getpid()}-{secrets.token_hex(4)}"
        self._base = Path(base_dir) / self.name
        self._options = list(mounts)
        self.brick = self._base / "brick"
        self.mounts = [self._base / f"mount-{i}" for i in range(len(self._options))]
        self._lease: GlusterdLease | None = None
        self._created = False

    def __enter__(self) -> GlusterVolume:
        self._lease = GlusterdLease().__enter__()
        try:
            remove_orphans()
            self._base.mkdir(parents=True)
            gluster("volume", "create", self.name, f"{socket.gethostname()}:{self.brick}",
                    "force")  # force: the brick is on the root file system
            self._created = True
            gluster("volume", "start", self.name)
            for mount, options in zip(self.mounts, self._options, strict=True):
                self._mount(mount, options)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _mount(self, mount: Path, options: str) -> None:
        mount.mkdir()
        log = self._base / f"{mount.name}.log"
        opts = ",".join(o for o in (f"log-file={log}", options) if o)
        done = subprocess.run(["mount", "-t", "glusterfs", "-o", opts,
                               f"127.0.0.1:/{self.name}", str(mount)],
                              capture_output=True, text=True, timeout=_CLI_TIMEOUT, check=False)
        if done.returncode != 0 or not os.path.ismount(mount):
            raise ServerStartError(f"mounting volume {self.name} at {mount} failed: "
                                   f"{(done.stdout + done.stderr).strip()}; see {log}")

    def close(self) -> None:
        """Unmount every mount, stop and delete the volume, leave glusterd.
        Each step runs even when an earlier one failed; the first error is
        raised at the end."""
        errors: list[BaseException] = []
        for mount in self.mounts:
            _attempt(errors, unmount, mount)
        if self._created:
            _attempt(errors, delete_volume, self.name)
            self._created = False
        if self._lease is not None:
            _attempt(errors, self._lease.__exit__, None, None, None)
            self._lease = None
        _attempt(errors, shutil.rmtree, self._base, ignore_errors=True)
        if errors:
            raise errors[0]


def _attempt(errors: list[BaseException], step: Callable[..., object], *args: object,
             **kwargs: object) -> None:
    try:
        step(*args, **kwargs)
    except Exception as exc:  # every step runs; the first error is raised at the end
        errors.append(exc)


def unmount(mount: Path) -> None:
    """Unmount, lazily when busy (a process still has a file open there)."""
    if not os.path.ismount(mount):
        return
    done = subprocess.run(["umount", str(mount)], capture_output=True, timeout=60, check=False)
    if done.returncode != 0 and os.path.ismount(mount):
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=60,
                       check=True)


def delete_volume(name: str) -> list[Path]:
    """Stop and delete volume ``name`` and its brick logs; returns its bricks."""
    info = gluster("volume", "info", name)
    bricks = [Path(line.split(":", 2)[2]) for line in info.splitlines()
              if re.match(r"^Brick\d+:", line)]
    gluster("volume", "stop", name, "force")
    gluster("volume", "delete", name)
    for brick in bricks:
        with contextlib.suppress(OSError):
            (_BRICK_LOGS / f"{str(brick).strip('/').replace('/', '-')}.log").unlink()
    with contextlib.suppress(OSError):  # glusterd leaves the volume's (empty) pid directory
        (_RUN_DIRS / name).rmdir()
    return bricks


def remove_orphans() -> list[str]:
    """Tear down volumes of runs whose process is gone (killed before their
    teardown), with their mounts; returns their names."""
    removed = []
    for name in volumes():
        match = _NAME.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        for mount in mounts_of(name):
            unmount(mount)
        with contextlib.suppress(ServerStartError):  # another run may be removing it too
            for brick in delete_volume(name):
                shutil.rmtree(brick, ignore_errors=True)
        removed.append(name)
    return removed


def mounts_of(name: str) -> list[Path]:
    """Where volume ``name`` is mounted now (from /proc/mounts)."""
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        source, target, fstype, *_ = line.split()
        if fstype == "fuse.glusterfs" and source.endswith(f":/{name}"):
            out.append(Path(target.replace("\\040", " ")))
    return out


def volumes() -> list[str]:
    """The volumes glusterd knows now."""
    out = gluster("volume", "list")
    return [] if "No volumes present" in out else out.split()
