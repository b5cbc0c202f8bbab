"""The held-lock scale scenario: does anything cost more with what a session holds?

One process, one run, two sessions: ``full`` takes ``held`` (10,000) locks,
``empty`` holds none. Load on this shared machine drifts by more than the
effect looked for, so every figure is measured interleaved with its control:

- one more lock's acquire+release, alternating cycle by cycle between the two
  sessions, before the fill (both empty: the baseline ratio) and with
  ``held`` held by ``full``: p50 with N held / p50 empty, same phase;
- filling the ``held`` locks one by one, in chunks alternating with bursts of
  the empty session's uncontended cycles: fill locks/s / cycles/s;
- ``lock_many`` of ``held`` names: held, or refused at once with a
  ConfigError saying how many fit (time to the answer), then a ``lock_many``
  of the names that fit (acquire+release).

``--quick`` (the tests) holds 200.
"""

from __future__ import annotations

import re
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


def _cycle(lock: Lock) -> float:
    """Milliseconds of one acquire+release of ``lock``."""
    started = time.perf_counter_ns()
    lock.acquire()
    lock.release()
    return (time.perf_counter_ns() - started) / 1e6


def _alternate(a: Lock, b: Lock, count: int) -> tuple[list[float], list[float]]:
    """``count`` cycles of each, alternating (which goes first alternates too)."""
    xs: list[float] = []
    ys: list[float] = []
    for n in range(count):
        if n % 2:
            ys.append(_cycle(b))
            xs.append(_cycle(a))
        else:
            xs.append(_cycle(a))
            ys.append(_cycle(b))
    return xs, ys


def _fill(zk: Session, base: str, count: int, control: Lock) -> tuple[list[Lock], float, float]:
    """Take ``count`` locks one by one, in chunks between bursts of ``control``'s
    cycles; (the locks, fill locks/s, control cycles/s)."""
    locks = [zk.lock(f"{base}/{n}") for n in range(count)]
    chunk = max(1, count // 40)
    fill_s = cycle_s = 0.0
    cycles = 0
    for first in range(0, count, chunk):
        started = time.perf_counter()
        for lock in locks[first:first + chunk]:
            lock.acquire()
        fill_s += time.perf_counter() - started
        burst = [_cycle(control) for _ in range(max(2, chunk // 10))]
        cycle_s += sum(burst) / 1e3
        cycles += len(burst)
    return locks, count / fill_s, cycles / cycle_s


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
    opts: dict[str, Any] = {"root": "/", "session_timeout": 30, "connect_timeout": 30}
    with connect(hosts, **opts) as zk, connect(hosts, **opts) as empty:
        probe, control = zk.lock(f"{base}-probe"), empty.lock(f"{base}-control")
        _alternate(probe, control, cfg.warmup)
        before, before_control = _alternate(probe, control, cycles)
        locks, fill_rate, cycle_rate = _fill(zk, f"{base}-held", held, control)
        with_held, held_control = _alternate(probe, control, cycles)
        for lock in locks:
            lock.release()
        many = _many(zk, f"{base}-many", held)
    lat = {"empty session, before": spread(before_control), "same session, 0 held": spread(before),
           "empty session, meanwhile": spread(held_control),
           f"same session, {held} held": spread(with_held)}
    ratios = {
        f"{held} held / empty p50": lat[f"same session, {held} held"]["p50"]
        / lat["empty session, meanwhile"]["p50"],
        "0 held / empty p50 (baseline)": lat["same session, 0 held"]["p50"]
        / lat["empty session, before"]["p50"],
        "fill / uncontended cycle rate": fill_rate / cycle_rate,
    }
    return {
        "held": held,
        "latency_ms": lat,
        "fill_locks_per_s": fill_rate,
        "uncontended_cycles_per_s": cycle_rate,
        "many": many,
        "ratios": ratios,
        "facts": {
            "held/empty p50": round(ratios[f"{held} held / empty p50"], 3),
            "baseline": round(ratios["0 held / empty p50 (baseline)"], 3),
            "fill/s vs cycles/s": (round(fill_rate), round(cycle_rate)),
            f"lock_many {held}": many["outcome"],
            "answer ms": round(many["answer_ms"], 1),
            "fit": many.get("fit"),
        },
    }
