"""The held-lock scale scenario: does anything cost more with what a session holds?

One process, one run, two sessions: ``full`` takes ``held`` (10,000) locks,
``empty`` holds none. Load on this shared machine drifts by more than the
effect looked for, so every figure is measured interleaved with its control:

- one more lock's acquire+release, alternating cycle by cycle between the two
  sessions, before the fill (both empty: the baseline ratio) and with
  ``held`` held by ``full``: p50 with N held / p50 empty, same phase;
- filling the ``held`` locks one by one, in chunks alternating with bursts of
  the empty session's uncontended cycles: fill locks/s / cycles/s (the
  spread: chunk by chunk). A fresh name's first acquire also creates its
  queue (a container), a server path the cycles do not take: a first,
  uncounted chunk warms it;
- the same fill pipelined: each chunk's acquires awaited together through
  the asyncio face (``asyncio.gather`` of ``acquire_async``; the default
  executor's threads keep several round trips in flight);
- ``lock_many`` of ``held`` names: held, or refused at once with a
  ConfigError saying how many fit (time to the answer), then a ``lock_many``
  of the names that fit (acquire+release).

``--quick`` (the tests) holds 200.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
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


def _one_by_one(locks: list[Lock]) -> None:
    for lock in locks:
        lock.acquire()


def _fill(
    locks: list[Lock], control: Lock, take: Callable[[list[Lock]], None]
) -> dict[str, Any]:
    """Take ``locks`` with ``take``, in chunks between bursts of ``control``'s
    cycles: fill locks/s, control cycles/s, and their ratio chunk by chunk."""
    chunk = max(1, len(locks) // 40)
    fill_s = cycle_s = 0.0
    cycles = 0
    ratios = []
    for first in range(0, len(locks), chunk):
        part = locks[first:first + chunk]
        started = time.perf_counter()
        take(part)
        took = time.perf_counter() - started
        burst = [_cycle(control) for _ in range(max(2, chunk // 10))]
        fill_s += took
        cycle_s += sum(burst) / 1e3
        cycles += len(burst)
        ratios.append((len(part) / took) / (len(burst) * 1e3 / sum(burst)))
    return {"fill_locks_per_s": len(locks) / fill_s, "cycles_per_s": cycles / cycle_s,
            "chunk_ratios": ratios}


def _warm_fill(zk: Session, base: str, count: int) -> None:
    """Fresh names' first acquires (each creates its queue), uncounted."""
    locks = [zk.lock(f"{base}/{n}") for n in range(max(1, count // 40))]
    _one_by_one(locks)
    for lock in locks:
        lock.release()


def _fill_async(zk: Session, base: str, count: int, control: Lock) -> dict[str, Any]:
    """The fill pipelined through the asyncio face, then released."""
    locks = [zk.lock(f"{base}/{n}") for n in range(count)]
    loop = asyncio.new_event_loop()

    async def together(part: list[Lock]) -> None:
        await asyncio.gather(*(lock.acquire_async() for lock in part))

    try:
        out = _fill(locks, control, lambda part: loop.run_until_complete(together(part)))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    for lock in locks:
        lock.release()
    return out


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
        _warm_fill(zk, f"{base}-warm", held)
        locks = [zk.lock(f"{base}-held/{n}") for n in range(held)]
        fill = _fill(locks, control, _one_by_one)
        with_held, held_control = _alternate(probe, control, cycles)
        for lock in locks:
            lock.release()
        pipelined = _fill_async(zk, f"{base}-async", held, control)
        many = _many(zk, f"{base}-many", held)
    return _summary(held, before, before_control, with_held, held_control, fill, pipelined, many)


def _summary(held: int, before: list[float], before_control: list[float],
             with_held: list[float], held_control: list[float], fill: dict[str, Any],
             pipelined: dict[str, Any], many: dict[str, Any]) -> dict[str, Any]:
    lat = {"empty session, before": spread(before_control), "same session, 0 held": spread(before),
           "empty session, meanwhile": spread(held_control),
           f"same session, {held} held": spread(with_held)}
    ratios = {
        f"{held} held / empty p50": lat[f"same session, {held} held"]["p50"]
        / lat["empty session, meanwhile"]["p50"],
        "0 held / empty p50 (baseline)": lat["same session, 0 held"]["p50"]
        / lat["empty session, before"]["p50"],
        "fill / uncontended cycle rate": fill["fill_locks_per_s"] / fill["cycles_per_s"],
        "pipelined fill / uncontended cycle rate": pipelined["fill_locks_per_s"]
        / pipelined["cycles_per_s"],
    }
    return {
        "held": held,
        "latency_ms": lat,
        "fill_locks_per_s": fill["fill_locks_per_s"],
        "uncontended_cycles_per_s": fill["cycles_per_s"],
        "pipelined_fill_locks_per_s": pipelined["fill_locks_per_s"],
        "pipelined_cycles_per_s": pipelined["cycles_per_s"],
        "many": many,
        "ratios": ratios,
        "ratio_spread": {
            "fill / uncontended cycle rate": spread(fill["chunk_ratios"]),
            "pipelined fill / uncontended cycle rate": spread(pipelined["chunk_ratios"]),
        },
        "text": _text(held, lat, fill, pipelined, many),
    }


def _text(held: int, lat: dict[str, Any], fill: dict[str, Any], pipelined: dict[str, Any],
          many: dict[str, Any]) -> list[str]:
    """The scenario's facts, one line each, for the plain and Markdown tables."""
    if many["outcome"] == "held":
        many_text = f"held all, acquire+release {many['answer_ms']:.0f} ms"
    else:
        many_text = (f"refused (ConfigError) in {many['answer_ms']:.0f} ms: {many['fit']:,} "
                     f"fit in one multi; lock_many of those {many.get('fit_cycle_ms', 0):.0f} ms "
                     "acquire+release")
    return [
        f"scale: one more lock's cycle p50 {lat[f'same session, {held} held']['p50']:.3f} ms "
        f"with {held:,} held, {lat['empty session, meanwhile']['p50']:.3f} ms on an empty "
        f"session (0 held before: {lat['same session, 0 held']['p50']:.3f} / "
        f"{lat['empty session, before']['p50']:.3f} ms)",
        f"scale: fill of {held:,} one by one {fill['fill_locks_per_s']:.0f} locks/s vs "
        f"{fill['cycles_per_s']:.0f} uncontended cycles/s; pipelined (asyncio.gather) "
        f"{pipelined['fill_locks_per_s']:.0f} vs {pipelined['cycles_per_s']:.0f}",
        f"scale: lock_many of {held:,} names: {many_text}",
    ]
