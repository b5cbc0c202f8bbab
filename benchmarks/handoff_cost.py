"""Requests, CPU and thread wake-ups per contended handoff, zkflock against kazoo's Lock.

    .venv/bin/python benchmarks/handoff_cost.py                  # 2 and 4 processes, loopback
    .venv/bin/python benchmarks/handoff_cost.py --delay 0.5      # through a 0.5 ms path
    .venv/bin/python benchmarks/handoff_cost.py --profile 2      # + py-spy of one worker, 2 procs
    .venv/bin/python benchmarks/handoff_cost.py --strace 2       # + its system calls per cycle
    .venv/bin/python benchmarks/handoff_cost.py --kinds zkflock,zkflock_queued,kazoo

``--kinds`` (default ``zkflock,kazoo``) runs each kind twice, in that order
and then reversed. Besides ``zkflock`` and ``kazoo``, two variants of zkflock
put one hot-path change back in their own worker process, for a before/after
in one run: ``zkflock_queued`` (a waiter's watch queued for kazoo's callback
thread, as kazoo dispatches it) and ``zkflock_old_decide`` (the decision
parsing every child: the reference model, ``tests/_protocol_reference.py``).

N processes each take and release one lock as fast as they can for a few
seconds on a local standalone ZooKeeper (forceSync=no); zkflock and kazoo
alternate, twice each. For each run it prints handoffs/s, the server's
received packets per handoff (``mntr``), the client and server CPU per
handoff (``os.times`` of the workers, ``/proc`` of the JVM) and the client's
context switches per handoff (every thread of every worker, from
``/proc/<pid>/task/*/status``: each is a thread going to sleep or being
woken, the GIL handoffs between kazoo's connection thread, its callback
thread and the caller included).

``--profile N`` also samples one worker of each kind with py-spy (``pip
install py-spy``; root or ptrace rights) for the measured seconds and prints
where its on-CPU samples were: by thread, and the functions with the most
samples including callees, and the leaf functions (self time).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kazoo.client import KazooClient

import zkflock
from zkflock._bench.delay import DelayPath, upstreams_of
from zkflock._server.local import LocalZooKeeper

SECONDS = 4.0


def context_switches() -> int:
    """Voluntary + involuntary context switches of every thread of this process."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        total += sum(int(n) for n in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def put_back(kind: str) -> None:
    """In this worker process only, undo the change that ``kind`` measures."""
    if kind == "zkflock_queued":
        from kazoo.handlers.threading import SequentialThreadingHandler

        from zkflock._zk.client import OneSelectHandler

        OneSelectHandler.dispatch_callback = (  # type: ignore[method-assign]
            SequentialThreadingHandler.dispatch_callback)
    elif kind == "zkflock_old_decide":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import _protocol_reference
        from zkflock._locks import drivers

        object.__setattr__(drivers.EXCLUSIVE_DRIVER, "decider",
                           _protocol_reference.decide_exclusive)


def worker(kind: str, hosts: str, until: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    n = 0
    if kind.startswith("zkflock"):
        put_back(kind)
        zk = zkflock.connect(hosts)
        t0, c0 = os.times(), context_switches()
        while time.monotonic() < until:
            with zk.lock("c"):
                n += 1
        t, c = os.times(), context_switches()
        zk.close()
    else:
        client = KazooClient(hosts=hosts)
        client.start()
        lock = client.Lock("/k/c")
        t0, c0 = os.times(), context_switches()
        while time.monotonic() < until:
            with lock:
                n += 1
        t, c = os.times(), context_switches()
        client.stop()
    q.put((n, t.user + t.system - t0.user - t0.system, c - c0, os.getpid()))


def jvm_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def packets(server: LocalZooKeeper) -> int:
    found = re.search(r"zk_packets_received\s+(\d+)", server.four_letter(1, "mntr"))
    assert found is not None
    return int(found.group(1))


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy not found: pip install py-spy")
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "400",
         "--format", "raw", "--threads", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def trace(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    if shutil.which("strace") is None:
        print("strace not found: apt-get install strace")
        return None
    return subprocess.Popen(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-f", "-q",
                             "-p", str(pid), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report_trace(kind: str, path: Path, handoffs: int) -> None:
    """strace -c's table, as system calls per acquire+release of the traced worker."""
    print(f"\n-- strace -c -f, one {kind} worker: system calls per acquire+release "
          f"({handoffs} of them; strace slows it, the counts per cycle stand)")
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[3].isdigit():
            print(f"   {fields[-1]:<16} {int(fields[3]) / max(handoffs, 1):6.2f}")


def report_profile(kind: str, path: Path, top: int = 14) -> None:
    """Per thread, inclusive and leaf sample counts from py-spy's raw format."""
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = frames[0], [re.sub(r" \((.*/)?", " (", f) for f in frames[1:]]
        total += count
        threads[re.sub(r"\(0x[0-9a-f]+\)", "", thread).strip()] += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            leaf[frames[-1]] += count
    print(f"\n-- py-spy, one {kind} worker: {total} on-CPU samples")
    for name, count in threads.most_common():
        print(f"   thread {name:<40} {count / total:6.1%}")
    print("   most samples including callees:")
    for name, count in inclusive.most_common(top):
        print(f"   {count / total:6.1%}  {name}")
    print("   most samples in the function itself:")
    for name, count in leaf.most_common(top):
        print(f"   {count / total:6.1%}  {name}")


def run(kind: str, procs: int, hosts: str, server: LocalZooKeeper, jvm: int,
        spy_dir: Path | None, how: str = "py-spy") -> None:
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    until = time.monotonic() + 1.0 + SECONDS  # 1 s to connect
    workers = [mp.Process(target=worker, args=(kind, hosts, until, q)) for _ in range(procs)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    spy = None
    if spy_dir is not None and workers[0].pid is not None:
        tool = profile if how == "py-spy" else trace
        spy = tool(workers[0].pid, SECONDS - 1, spy_dir / f"{kind}.txt")
    p0, j0 = packets(server), jvm_cpu(jvm)
    results = [q.get() for _ in workers]
    p1, j1 = packets(server), jvm_cpu(jvm)
    for w in workers:
        w.join()
    n = sum(r[0] for r in results)
    cpu = sum(r[1] for r in results)
    switches = sum(r[2] for r in results)
    print(f"{procs} processes {kind:18s} handoffs/s {n / SECONDS:6.0f}  "
          f"requests/handoff {(p1 - p0) / n:5.2f}  "
          f"client CPU/handoff {cpu / n * 1e6:5.0f} us  "
          f"server CPU/handoff {(j1 - j0) / n * 1e6:5.0f} us  "
          f"context switches/handoff {switches / n:5.1f}", flush=True)
    if spy is not None and spy_dir is not None:
        spy.wait(60)
        if how == "py-spy":
            report_profile(kind, spy_dir / f"{kind}.txt")
        else:
            traced = next(r[0] for r in results if r[3] == workers[0].pid)
            report_trace(kind, spy_dir / f"{kind}.txt", traced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.0, help="one-way delay, ms")
    parser.add_argument("--procs", default="2,4", help="process counts, e.g. 2,4")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="py-spy one worker of each kind in the N-process runs")
    parser.add_argument("--strace", type=int, default=0, metavar="N",
                        help="count one worker's system calls (strace -c) in the N-process runs")
    parser.add_argument("--kinds", default="zkflock,kazoo",
                        help="zkflock, kazoo, zkflock_queued, zkflock_old_decide (comma-separated)")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    order = kinds + kinds[::-1]
    with tempfile.TemporaryDirectory(prefix="zkflock-handoff-") as tmp, \
            LocalZooKeeper(tmp, tick_time=200, force_sync=False) as server:
        jvm = server.pid(1)
        assert jvm is not None
        path = DelayPath(upstreams_of(server.hosts), args.delay / 1e3) if args.delay else None
        hosts = path.hosts if path else server.hosts
        try:
            for procs in (int(p) for p in args.procs.split(",")):
                for rep, kind in enumerate(order):
                    how = "strace" if args.strace == procs else "py-spy"
                    watched = procs in (args.profile, args.strace) and rep < len(kinds)
                    run(kind, procs, hosts, server, jvm, Path(tmp) if watched else None, how)
        finally:
            if path is not None:
                path.stop()


if __name__ == "__main__":
    main()
