"""Startup: ``zkflock run L -- true`` against a bare interpreter and flock(1).

A script that locks per file in a loop pays a command's start every time.
Each round runs every contender once, in a shuffled order (a load spike on
this shared machine hits all of them), and the summary is medians and their
ratios, same run::

    bare      python -c pass              the floor of any Python command
    kazoo     python -c 'import kazoo.client'   what kazoo's import alone costs
    zkflock   zkflock run L -- true       connect, lock, run true, release, close
    full      the same on the full path   (ZKFLOCK_FAST=0: click, kazoo, threads)
    flock     flock FILE true             the local tool it stands in for

Every Python contender runs with its bytecode cached, as in an installed
package: this machine sets PYTHONDONTWRITEBYTECODE, which would make every
start recompile zkflock's (editable) sources, so the runs get a private
PYTHONPYCACHEPREFIX instead, filled by the warm-up rounds.

Run on its own: ``python -m zkflock._bench.startup [--rounds N] [--hosts H]``
(starts a local ZooKeeper unless --hosts is given).
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig

TARGET = 5.0  # zkflock run / bare interpreter, issue 11


def _zkflock_argv() -> list[str]:
    """The installed console script next to this interpreter, as users run it."""
    script = Path(sys.executable).with_name("zkflock")
    return [str(script)] if script.exists() else [sys.executable, "-m", "zkflock"]


def contenders(hosts: str, folder: str) -> dict[str, list[str]]:
    lock_file = os.path.join(folder, "startup.lock")
    found = {
        "bare": [sys.executable, "-c", "pass"],
        "kazoo": [sys.executable, "-c", "import kazoo.client"],
        "zkflock": [*_zkflock_argv(), "--hosts", hosts, "run", "bench/startup", "--", "true"],
        # env(1) adds one exec (about a millisecond) to the full path's figure.
        "full": ["env", "ZKFLOCK_FAST=0", *_zkflock_argv(), "--hosts", hosts, "run",
                 "bench/startup", "--", "true"],
    }
    if shutil.which("flock"):
        found["flock"] = ["flock", lock_file, "true"]
    return found


def _once(argv: list[str], cwd: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, its whole tree) of one start."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cached_bytecode_env(folder: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(folder, "pycache")
    return env


def measure(hosts: str, rounds: int, warmup: int = 2) -> dict[str, Any]:
    """Wall seconds per start for every contender, ``rounds`` interleaved rounds."""
    with tempfile.TemporaryDirectory(prefix="zkflock-startup-") as folder:
        argvs = contenders(hosts, folder)
        env = _cached_bytecode_env(folder)
        samples: dict[str, list[float]] = {name: [] for name in argvs}
        cpu: dict[str, list[float]] = {name: [] for name in argvs}
        order = list(argvs)
        for i in range(warmup + rounds):
            random.shuffle(order)
            for name in order:
                wall, used = _once(argvs[name], folder, env)
                if i >= warmup:
                    samples[name].append(wall)
                    cpu[name].append(used)
    return {"rounds": rounds, "samples_s": samples, "cpu_s": cpu}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians and ratios of wall time (what a script waits) and of CPU time
    (user + system: less sensitive to the other loads of a shared machine)."""
    med = {name: statistics.median(s) for name, s in raw["samples_s"].items()}
    cpu = {name: statistics.median(s) for name, s in raw["cpu_s"].items()}
    ratios = {"zkflock run/bare python": med["zkflock"] / med["bare"],
              "kazoo import/bare python": med["kazoo"] / med["bare"],
              "cpu zkflock run/bare python": cpu["zkflock"] / max(cpu["bare"], 1e-3)}
    if "full" in med:
        ratios["full path run/bare python"] = med["full"] / med["bare"]
    if "flock" in med:
        ratios["zkflock run/flock"] = med["zkflock"] / med["flock"]
    return {
        "median_ms": {name: round(m * 1000, 2) for name, m in med.items()},
        "median_cpu_ms": {name: round(m * 1000, 2) for name, m in cpu.items()},
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "target": f"zkflock run/bare python <= {TARGET}",
        "met": ratios["zkflock run/bare python"] <= TARGET,
        "facts": {"median ms": {name: round(m * 1000, 1) for name, m in med.items()},
                  "zkflock run/bare": round(ratios["zkflock run/bare python"], 2)},
        "raw": raw,
    }


def startup(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    """The ``zkflock bench startup`` scenario: ``cfg.rounds`` rounds."""
    return summarize(measure(hosts, rounds=max(cfg.rounds, 3)))


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m zkflock._bench.startup")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hosts", default=None)
    args = parser.parse_args(argv)
    if args.hosts:
        result = summarize(measure(args.hosts, args.rounds))
    else:
        from zkflock._server.local import LocalZooKeeper

        with tempfile.TemporaryDirectory(prefix="zkflock-startup-zk-") as tmp:
            server = LocalZooKeeper(tmp, force_sync=False).start()
            try:
                result = summarize(measure(server.hosts, args.rounds))
            finally:
                server.stop()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"startup, {args.rounds} rounds, medians (load average {' '.join(load)}):")
    for name, ms in result["median_ms"].items():
        print(f"  {name:<8} wall {ms:8.1f} ms   cpu {result['median_cpu_ms'][name]:7.1f} ms")
    for name, ratio in result["ratios"].items():
        print(f"  {name:<26} {ratio:6.2f}x")
    print(f"  target {result['target']}: {'met' if result['met'] else 'MISSED'}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
