"""``zkflock edit`` and ``zkflock append -``: real processes, real ZooKeeper.

The counter runs drive shell commands through the command and judge the
result with the counter workload's checker (zkflock._harness.check): every
acknowledged increment present exactly once. The pause run freezes a writer
(its ``zkflock`` and its command, SIGSTOP) past the session timeout while
others go on; ``edit`` must commit nothing stale, and the same workload
through ``zkflock run`` with direct writes is shown to lose updates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import zkflock
from zkflock._cli.runner import Interrupted, SignalGate
from zkflock._harness.check import Attempt, Verdict, check, parse_history

WAIT = 60.0

# One increment of the counter in FILE (edit: the working copy; run: the plain
# file itself), logged as the workload's clients do: an 'invoked' record before
# the write; the driver adds the outcome. A victim (READY set) stops between its
# read and its write until GO exists, so the test can freeze it there.
INCREMENT = r'''
F=${ZKFLOCK_FILE:-counter.txt}
n=$(cat "$F"); v=$((${n:-0} + 1))
printf '{"value":%d,"ok":false,"error":"invoked"}\n' "$v" >> "$HIST"
if [ -n "$READY" ]; then
  echo $$ > "$READY.tmp"; mv "$READY.tmp" "$READY"
  i=0; while [ ! -f "$GO" ] && [ $i -lt 1200 ]; do i=$((i+1)); sleep 0.05; done
fi
printf '%d\n' "$v" > "$F"
[ -n "$DONE" ] && touch "$DONE"
exit 0
'''


def zkflock_argv(hosts: str, mode: str) -> list[str]:
    return [sys.executable, "-m", "zkflock", "--hosts", hosts, mode, "counter.txt",
            "-c", INCREMENT]


def log_outcome(hist: Path, code: int) -> None:
    """The driver's half of the history: the outcome of the last invocation."""
    lines = hist.read_text().splitlines() if hist.exists() else []
    if not lines:
        return  # failed before it read the counter: nothing attempted
    value = parse_history(lines[-1:])[0].value
    with open(hist, "a") as f:
        f.write(Attempt(value, code == 0, "" if code == 0 else f"exit {code}").to_json()
                + "\n")


def increment(hosts: str, cwd: Path, mode: str, hist: Path, **env: str) -> int:
    result = subprocess.run(zkflock_argv(hosts, mode), cwd=cwd, timeout=WAIT,
                            capture_output=True, text=True,
                            env={**os.environ, "HIST": str(hist), **env})
    log_outcome(hist, result.returncode)
    return result.returncode


def verdict(tmp_path: Path, final: int) -> Verdict:
    attempts = [a for hist in sorted(tmp_path.glob("hist-*"))
                for a in parse_history(hist.read_text().splitlines())]
    return check(attempts, final)


def start_counter(zk: zkflock.Session, tmp_path: Path, mode: str) -> Callable[[], int]:
    """Set the counter to 0; returns how to read its final value."""
    if mode == "edit":
        f = zk.shared_file("counter.txt")
        f.write("0\n")
        return lambda: int(f.read().strip())
    (tmp_path / "counter.txt").write_text("0\n")
    return lambda: int((tmp_path / "counter.txt").read_text().strip())


# -- the basics ------------------------------------------------------------------------


def edit_cli(hosts: str, cwd: Path, *args: str,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zkflock", "--hosts", hosts, *args], cwd=cwd,
                          input=stdin, capture_output=True, text=True, timeout=WAIT)


def test_edit_commits_on_success_only(zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        f = zk.shared_file("notes.txt")
        f.write("one\n")
        ok = edit_cli(zk_hosts, tmp_path, "edit", "notes.txt", "--", "sh", "-c",
                      'echo two >> "$ZKFLOCK_FILE"; echo "$ZKFLOCK_LOCK $ZKFLOCK_TOKEN"')
        assert (ok.returncode, ok.stderr) == (0, "")
        name, token = ok.stdout.split()
        assert name == "notes.txt"
        assert int(token) > 0
        assert f.read() == "one\ntwo\n"
        assert (tmp_path / "notes.txt").read_text() == "one\ntwo\n"  # the plain view
        version = f.meta().version

        failed = edit_cli(zk_hosts, tmp_path, "edit", "notes.txt", "-c",
                          'echo three >> "$ZKFLOCK_FILE"; exit 4')
        assert failed.returncode == 4
        unchanged = edit_cli(zk_hosts, tmp_path, "edit", "notes.txt", "true")
        assert unchanged.returncode == 0
        assert f.read() == "one\ntwo\n"
        assert f.meta().version == version  # neither committed a version
        assert not list(f.objects_dir.glob("*.edit"))  # no working copy left behind


def test_edit_conflict_is_silent_and_usage_errors_are_64(zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk, zk.lock("notes.txt"):
        busy = edit_cli(zk_hosts, tmp_path, "edit", "-n", "-E", "9", "notes.txt", "true")
        assert (busy.returncode, busy.stderr) == (9, "")
    for args in (["edit"], ["edit", "notes.txt"], ["edit", "-s", "notes.txt", "true"],
                 ["edit", "../out", "true"]):
        assert edit_cli(zk_hosts, tmp_path, *args).returncode == 64, args


def test_append_dash_streams_standard_input(zk_hosts: str, tmp_path: Path) -> None:
    body = "".join(f"line {i}\n" for i in range(20_000))  # several 64 KiB pipe buffers
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        zk.shared_file("log.txt").write("first\n")
        result = edit_cli(zk_hosts, tmp_path, "append", "log.txt", "-", stdin=body)
        assert result.returncode == 0, result.stderr
        assert zk.shared_file("log.txt").read() == "first\n" + body


def test_edit_forwards_sigterm_and_commits_nothing(zk_hosts: str, tmp_path: Path) -> None:
    script = ('trap "exit 7" TERM; echo changed >> "$ZKFLOCK_FILE"; touch ready; '
              'i=0; while [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done')
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        f = zk.shared_file("notes.txt")
        f.write("one\n")
        proc = subprocess.Popen([sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "edit",
                                 "notes.txt", "-c", script], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_file(tmp_path / "ready", "the command to start")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=WAIT) == 7  # the command's trap ran: it got the signal
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=WAIT)
        assert f.read() == "one\n"  # it failed: nothing committed
        assert zk.lock("notes.txt").acquire(blocking=False)  # and the lock is free


# -- several concurrent editors --------------------------------------------------------


def test_concurrent_edits_lose_nothing(zk_hosts: str, tmp_path: Path) -> None:
    clients, rounds = 3, 3
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        final = start_counter(zk, tmp_path, "edit")

        def client(i: int) -> None:
            for _ in range(rounds):
                increment(zk_hosts, tmp_path, "edit", tmp_path / f"hist-{i}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=WAIT * rounds)
        result = verdict(tmp_path, final())
    assert result.ok, result
    assert result.acknowledged == result.final == clients * rounds


# -- a writer frozen past its lock -----------------------------------------------------


def _wait_file(path: Path, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def frozen_writer_run(zk_hosts: str, tmp_path: Path, mode: str) -> tuple[Verdict, int]:
    """A victim reads the counter, is frozen (SIGSTOP: its zkflock and its
    command) past its 1 s session timeout while two others increment, then
    resumes: the command first, which writes, then its zkflock. Returns the
    checker's verdict and the victim's exit code."""
    others = 2
    with zkflock.connect(zk_hosts, root=str(tmp_path)) as zk:
        final = start_counter(zk, tmp_path, mode)
        ready, go, done = tmp_path / "ready", tmp_path / "go", tmp_path / "done"
        victim_hist = tmp_path / "hist-victim"
        victim = subprocess.Popen(
            zkflock_argv(zk_hosts, mode), cwd=tmp_path, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "HIST": str(victim_hist), "READY": str(ready), "GO": str(go),
                 "DONE": str(done), "ZKFLOCK_SESSION_TIMEOUT": "1"})
        try:
            _wait_file(ready, "the victim to read the counter")
            child = int(ready.read_text())
            os.killpg(child, signal.SIGSTOP)  # the command runs in a group of its own
            os.kill(victim.pid, signal.SIGSTOP)
            for i in range(others):  # they get the lock once the victim's session expires
                assert increment(zk_hosts, tmp_path, mode, tmp_path / f"hist-{i}") == 0
            go.touch()
            os.killpg(child, signal.SIGCONT)
            _wait_file(done, "the victim's command to write")
            os.kill(victim.pid, signal.SIGCONT)
            code = victim.wait(timeout=WAIT)
        finally:
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGCONT)
                victim.kill()
            victim.communicate(timeout=WAIT)
        log_outcome(victim_hist, code)
        return verdict(tmp_path, final()), code


def test_edit_frozen_past_its_lock_commits_nothing_stale(zk_hosts: str, tmp_path: Path) -> None:
    result, code = frozen_writer_run(zk_hosts, tmp_path, "edit")
    assert code == 75  # the lock was lost: nothing committed
    assert result.ok, result
    assert (result.lost, result.acknowledged, result.final) == (0, 2, 2)


def test_run_with_direct_writes_loses_updates(zk_hosts: str, tmp_path: Path) -> None:
    # The control, same workload: zkflock run cannot fence what the command
    # writes itself, so the frozen writer's stale value overwrites the others'.
    result, _ = frozen_writer_run(zk_hosts, tmp_path, "run")
    assert not result.ok
    assert result.lost > 0
    assert result.final == 1  # 0 + 1, written by the victim after the others' 1 and 2


def _signalled_before_hold() -> None:
    with SignalGate():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next bytecode


def _signalled_after_hold(reached: list[bool]) -> None:
    with SignalGate() as gate:
        gate.hold()
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
        reached.append(True)  # the "commit" went on after the signal


def test_signal_gate_interrupts_before_hold_and_defers_after() -> None:
    # Waiting for the lock, a signal interrupts at once; once the child has run,
    # it waits until the commit is over, so a commit is never cut in half.
    with pytest.raises(Interrupted) as first:
        _signalled_before_hold()
    assert first.value.signum == signal.SIGTERM
    reached: list[bool] = []
    with pytest.raises(Interrupted) as held:
        _signalled_after_hold(reached)
    assert reached == [True]
    assert held.value.signum == signal.SIGHUP
