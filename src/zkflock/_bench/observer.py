"""Benchmarks of observability: the observers' hot-path cost, the exporter's reads.

``observer`` runs two measurements, each in a child process of its own (the
parent holds no ZooKeeper client, so later scenarios still fork cleanly):

- The uncontended acquire+release cycle of three sessions on one server,
  batches interleaved in shuffled rounds: ``noop`` (the default: the core
  makes no observer call at all), ``empty`` (an Observer that overrides
  nothing: every event is dispatched and does nothing, the cost of the calls)
  and ``prometheus`` (PrometheusObserver on a registry of its own), one cycle
  of each in a shuffled order, over and over. Latency and CPU per cycle, as
  ratios to ``noop``; plus the observers' own cost of one cycle's three
  events, timed without ZooKeeper, against the ``noop`` cycle's CPU.
- The exporter's read of N locks (1,000 in a full run), each with one holder
  and two waiters: seconds and ZooKeeper requests per snapshot.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import random
import threading
import time
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from zkflock._bench.report import spread
from zkflock._bench.workers import unique_name

if TYPE_CHECKING:
    from zkflock._bench.scenarios import BenchConfig
    from zkflock._session import Session

_CTX = mp.get_context("fork")
_KINDS = ("noop", "empty", "prometheus")
_EVENT_CYCLES = 20_000


def _observers() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from zkflock.metrics import Observer, PrometheusObserver

    return {"noop": None, "empty": Observer(),
            "prometheus": PrometheusObserver(CollectorRegistry())}


def _cycle(session: Session, name: str) -> tuple[int, float]:
    """One uncontended acquire+release: (latency ns, process CPU seconds)."""
    cpu0 = time.process_time()
    t0 = time.perf_counter_ns()
    with session.lock(name):
        pass
    return time.perf_counter_ns() - t0, time.process_time() - cpu0


def _event_cost(observer: Any) -> float:
    """Microseconds of one cycle's events (started, acquired, released), no ZooKeeper."""
    if observer is None:
        return 0.0
    t0 = time.perf_counter()
    for _ in range(_EVENT_CYCLES):
        observer.acquire_started("exclusive", "bench")
        observer.acquired("exclusive", "bench", 0.001)
        observer.released("exclusive", "bench", 0.001)
    return (time.perf_counter() - t0) / _EVENT_CYCLES * 1e6


def _hot_path(conn: Connection, hosts: str, warmup: int, batch: int, rounds: int) -> None:
    from zkflock._session import connect

    observers = _observers()
    sessions = {k: connect(hosts, metrics=observers[k], connect_timeout=30) for k in _KINDS}
    try:
        names = {k: unique_name(f"obs-{k}") for k in _KINDS}
        out: dict[str, Any] = {k: {"lat_ns": [], "cpu_s": []} for k in _KINDS}
        for kind in _KINDS:
            for _ in range(warmup):
                _cycle(sessions[kind], names[kind])
        # One cycle each in a shuffled order, over and over: on this shared
        # machine a load spike then hits every observer alike.
        for _ in range(batch * rounds):
            for kind in random.sample(_KINDS, len(_KINDS)):
                lat, cpu = _cycle(sessions[kind], names[kind])
                out[kind]["lat_ns"].append(lat)
                out[kind]["cpu_s"].append(cpu)
        out["event_us"] = {k: _event_cost(observers[k]) for k in _KINDS}
        conn.send(("ok", out))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for session in sessions.values():
            session.close()


def _queue_everywhere(session: Session, names: list[str]) -> threading.Thread:
    """One waiter on every name at once (lock_many: one multi), in a thread."""
    many = session.lock_many(names)
    thread = threading.Thread(target=lambda: _quietly(many.acquire), daemon=True)
    thread.start()
    return thread


def _quietly(call: Any) -> None:
    with contextlib.suppress(Exception):  # closed at the end of the run: expected
        call()


def _exporter_cost(conn: Connection, hosts: str, locks: int, reads: int) -> None:
    from zkflock._observe.snapshot import read_snapshot
    from zkflock._session import connect

    holder, w1, w2, reader = (connect(hosts, connect_timeout=30) for _ in range(4))
    try:
        base = unique_name("exp")
        names = [f"{base}-{i}" for i in range(locks)]
        for name in names:
            holder.lock(name).acquire()
        _queue_everywhere(w1, names)
        _queue_everywhere(w2, names)
        seen = read_snapshot(reader)
        while sum(sum(s.waiters.values()) for s in seen.locks) < 2 * locks:
            time.sleep(0.05)  # a set-up wait for the waiters' nodes, not a measurement
            seen = read_snapshot(reader)
        samples = [read_snapshot(reader) for _ in range(reads)]
        conn.send(("ok", {"locks": len(seen.locks),
                          "seconds": [s.seconds for s in samples],
                          "requests": samples[-1].requests}))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for session in (w1, w2, holder, reader):
            session.close()


def _in_child(target: Any, *args: Any, timeout: float = 900.0) -> dict[str, Any]:
    parent, child = _CTX.Pipe()
    proc = _CTX.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout):
            raise RuntimeError(f"{target.__name__} did not answer within {timeout} s")
        status, value = parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        parent.close()
    if status == "error":
        raise RuntimeError(f"{target.__name__} failed: {value}")
    return dict(value)


def observer(hosts: str, cfg: BenchConfig) -> dict[str, Any]:
    raw = _in_child(_hot_path, hosts, cfg.warmup, cfg.batch, cfg.rounds)
    lat = {k: spread([x / 1e6 for x in raw[k]["lat_ns"]]) for k in _KINDS}
    cpu = {k: spread(raw[k]["cpu_s"], 1e6) for k in _KINDS}
    locks = 1000 if cfg.rounds >= 10 else 20  # a full run measures 1,000; quick, a smoke
    exp = _in_child(_exporter_cost, hosts, locks, 5)
    read = spread(exp["seconds"])
    ratios = {}
    for kind in ("empty", "prometheus"):
        ratios[f"{kind}/noop p50"] = lat[kind]["p50"] / lat["noop"]["p50"]
        ratios[f"{kind}/noop cpu p50"] = cpu[kind]["p50"] / cpu["noop"]["p50"]
        # The observer's own work per cycle against a whole cycle's CPU.
        ratios[f"{kind} events/noop cycle cpu"] = raw["event_us"][kind] / cpu["noop"]["p50"]
    return {
        "latency_ms": lat,
        "cpu_us_per_cycle": cpu,
        "events_per_cycle_us": raw["event_us"],
        "exporter": {"locks": exp["locks"], "read_seconds": read,
                     "requests_per_read": exp["requests"]},
        "ratios": ratios,
        "facts": {f"{k} p50 ms": round(lat[k]["p50"], 3) for k in _KINDS}
        | {f"exporter {exp['locks']} locks: s/read p50": round(read["p50"], 3),
           "requests/read": exp["requests"]},
    }
