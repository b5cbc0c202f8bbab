"""The held-lock scale scenario: does anything cost more with what a session holds?

In one session, one run:

- one more lock's acquire+release p50 with 0 locks held, then with
  ``held`` (10,000) held, then with 0 again (the two empty phases bracket
  the held one, so drift on this shared machine shows);
- filling the ``held`` locks one by one (locks/s), against the uncontended
  cycle rate (cycles/s at 0 held);
- ``lock_many`` of ``held`` names: held, or refused at once with a
  ConfigError saying how many fit (time to the answer, the fit), then a
  ``lock_many`` of the names that fit (acquire+release).

``--quick`` (the tests) holds 200.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import TYPE_CHECKING, Any

from zkflock._bench.report import spread
from zkflock._bench.workers import unique_name
from zkflock._errors import ConfigError

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig
    from zkflock._locks.lock import Lock
    from zkflock._session import Session

HELD = 10_000
QUICK_HELD = 200


def _cycles(lock: Lock, count: int) -> list[float]:
    """Milliseconds of ``count`` acquire+release cycles of ``lock``."""
    out = []
    for _ in range(count):
        started = time.perf_counter_ns()
        lock.acquire()
        lock.release()
        out.append((time.perf_counter_ns() - started) / 1e6)
    return out


def _fill(zk: Session, base: str, count: int) -> tuple[list[Lock], float]:
    """Take ``count`` locks one by one; (the locks, locks per second)."""
    locks = [zk.lock(f"{base}/{n}") for n in range(count)]
    started = time.perf_counter()
    for lock in locks:
        lock.acquire()
    return locks, count / (time.perf_counter() - started)


def _many(zk: Session, base: str, count: int) -> dict[str, Any]:
    """lock_many of ``count`` names: its outcome, and one of what fits."""
    names = [f"{base}/{n}" for n in range(count)]
    started = time.perf_counter()
    try:
        with zk.lock_many(names, timeout=120):
            pass
    except ConfigError as exc:
        seconds = time.perf_counter() - started
        found = re.search(r"at most ([0-9,]+) of these names fit", str(exc))
        fit = int(found[1].replace(",", "")) if found else 0
        out: dict[str, Any] = {"names": count, "outcome": "refused", "answer_ms": seconds * 1e3,
                               "fit": fit, "message": str(exc)}
    else:
        return {"names": count, "outcome": "held", "answer_ms": (time.perf_counter() - started)
                * 1e3, "fit": count}
    if fit:
        started = time.perf_counter()
        with zk.lock_many(names[:fit], timeout=120):
            pass
        out["fit_cycle_ms"] = (time.perf_counter() - started) * 1e3
    return out


def scale(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    from zkflock._session import connect

    held = QUICK_HELD if cfg.rounds < 10 else HELD
    cycles = max(cfg.batch, 50)
    base = unique_name("scale")
    with connect(hosts, root="/", session_timeout=30, connect_timeout=30) as zk:
        probe = zk.lock(f"{base}-probe")
        _cycles(probe, cfg.warmup)
        empty_before = _cycles(probe, cycles)
        locks, fill_rate = _fill(zk, f"{base}-held", held)
        with_held = _cycles(probe, cycles)
        for lock in locks:
            lock.release()
        empty_after = _cycles(probe, cycles)
        many = _many(zk, f"{base}-many", held)
    empty = spread(empty_before + empty_after)
    full = spread(with_held)
    cycle_rate = 1e3 / statistics.median(empty_before + empty_after)
    ratios = {
        f"held {held} / empty p50": full["p50"] / empty["p50"],
        "fill / uncontended cycle rate": fill_rate / cycle_rate,
    }
    return {
        "held": held,
        "latency_ms": {"empty": empty, f"held {held}": full,
                       "empty before": spread(empty_before), "empty after": spread(empty_after)},
        "fill_locks_per_s": fill_rate,
        "uncontended_cycles_per_s": cycle_rate,
        "many": many,
        "ratios": ratios,
        "facts": {
            "p50 ms empty/held": (round(empty["p50"], 3), round(full["p50"], 3)),
            "fill/s vs cycles/s": (round(fill_rate), round(cycle_rate)),
            f"lock_many {held}": many["outcome"],
            "answer ms": round(many["answer_ms"], 1),
            "fit": many.get("fit"),
        },
    }
