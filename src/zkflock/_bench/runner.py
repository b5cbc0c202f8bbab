"""Settings of a benchmark run (where the server is, how far, how many nodes)
and the run itself: a fresh server per setting, every scenario on it.

A setting is loopback standalone (the old default), delayed (a standalone
server behind a ``DelayPath`` of a given one-way delay) or an ensemble of
three nodes with the clients spread over the nodes or all on one follower.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from zkflock._bench.delay import DelayPath, upstreams_of
from zkflock._bench.probes import machine
from zkflock._bench.report import check_targets, spread, summarize
from zkflock._bench.scenarios import SCENARIOS, BenchConfig
from zkflock._bench.workers import interleaved, start_workers, stop_workers, unique_name

NETWORK_SCENARIOS = ("uncontended", "contended", "many", "fenced")
"""What a delayed or ensemble setting runs unless scenarios are named."""


@dataclass(frozen=True)
class Setting:
    """One place to measure in; ``label`` keys its results."""

    label: str
    force_sync: bool | None = False  # None: the server is the user's (--hosts)
    delay_ms: float = 0.0
    nodes: int = 1
    on_follower: bool = False
    scenarios: tuple[str, ...] = ()

    @property
    def targets(self) -> str:
        """Which targets apply (report.TARGETS' groups)."""
        if self.delay_ms:
            return "delayed" if self.delay_ms == 0.5 else "none"
        return "ensemble" if self.nodes > 1 else "loopback"


def settings_for(*, force_sync: tuple[bool, ...], delays_ms: tuple[float, ...] = (),
                 ensemble: bool = False, loopback: bool = True,
                 scenarios: tuple[str, ...] = ()) -> list[Setting]:
    """The settings of a run: loopback per forceSync, then each delay
    (forceSync=no: the network is the variable), then the ensemble per
    forceSync, spread and on a follower (``hundred`` only when spread)."""
    out: list[Setting] = []
    default = tuple(s for s in SCENARIOS if s != "hundred")
    if loopback:
        out += [Setting(f"loopback forceSync={_yes(fs)}", fs, scenarios=scenarios or default)
                for fs in force_sync]
    out += [Setting(f"delay {d:g} ms forceSync=no", False, delay_ms=d,
                    scenarios=scenarios or NETWORK_SCENARIOS) for d in delays_ms]
    if ensemble:
        for fs in force_sync:
            out.append(Setting(f"ensemble spread forceSync={_yes(fs)}", fs, nodes=3,
                               scenarios=scenarios or (*NETWORK_SCENARIOS, "hundred")))
            out.append(Setting(f"ensemble follower forceSync={_yes(fs)}", fs, nodes=3,
                               on_follower=True, scenarios=scenarios or NETWORK_SCENARIOS))
    return out


def _yes(fs: bool) -> str:
    return "yes" if fs else "no"


@contextmanager
def _place(setting: Setting, hosts: str | None, tmp: str) -> Iterator[tuple[str, DelayPath | None]]:
    """The hosts string the contenders use in ``setting`` (and its delay path)."""
    from zkflock._server.local import LocalZooKeeper

    with ExitStack() as stack:
        if hosts is None:
            # A hundred sessions from one address: lift ZooKeeper's cap of
            # 60 connections per client IP. A follower may fall behind for
            # seconds on a loaded 2-core machine: 10 s (a production default,
            # 2 s ticks x 5) before the leader drops it and its clients.
            server = LocalZooKeeper(tmp, nodes=setting.nodes, tick_time=500,
                                    force_sync=bool(setting.force_sync),
                                    extra_config={"maxClientCnxns": "0", "syncLimit": "20"})
            stack.enter_context(server)
            hosts = server.hosts
            if setting.on_follower:
                follower = next(m for m in range(1, setting.nodes + 1)
                                if server.mode(m) == "follower")
                hosts = server.node_hosts(follower)
        path = None
        if setting.delay_ms:
            servers, slash, chroot = hosts.partition("/")
            path = stack.enter_context(DelayPath(upstreams_of(servers), setting.delay_ms / 1e3))
            hosts = path.hosts + slash + chroot
        yield hosts, path


def path_rtt(direct: str, delayed: str, cycles: int) -> dict[str, Any]:
    """One read's round trip, direct and through the delay path, interleaved."""
    workers = start_workers([("ping", unique_name("p"))], direct)
    workers += start_workers([("ping", unique_name("p"))], delayed)
    workers[1].kind = "ping delayed"
    cfg = BenchConfig(warmup=20, batch=max(cycles // 10, 1), rounds=10)
    try:
        raw = interleaved(workers, cfg)
    finally:
        stop_workers(workers)
    lat = {k: spread([x / 1e6 for x in v["lat_ns"]]) for k, v in raw.items()}
    added = lat["ping delayed"]["p50"] - lat["ping"]["p50"]
    return {"rtt_direct_ms": lat["ping"], "rtt_delayed_ms": lat["ping delayed"],
            "added_one_way_ms_p50": added / 2}


def run_setting(setting: Setting, cfg: BenchConfig, hosts: str | None,
                progress: Callable[[str], None]) -> dict[str, Any]:
    summaries: dict[str, Any] = {}
    raws: dict[str, Any] = {}
    path_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zkflock-bench-") as tmp, \
            _place(setting, hosts, tmp) as (target, path):
        if path is not None:
            direct = ",".join(f"{h}:{p}" for h, p in path.upstreams)
            path_info = {"delay_ms": setting.delay_ms, "proxy_cpu_share": {},
                         **path_rtt(direct, target, 200)}
        for name in setting.scenarios:
            progress(f"{setting.label}: {name} ...")
            started, cpu0 = time.monotonic(), path.cpu_seconds() if path else 0.0
            raws[name] = SCENARIOS[name](target, cfg)
            summaries[name] = summarize(name, raws[name])
            wall = time.monotonic() - started
            if path is not None:
                # The proxy's CPU as a share of one core while the scenario ran.
                path_info["proxy_cpu_share"][name] = (path.cpu_seconds() - cpu0) / wall
            progress(f"{setting.label}: {name} done in {wall:.0f} s")
    return {"setting": dataclasses.asdict(setting), "summaries": summaries,
            "targets": check_targets(summaries, setting.targets, setting.force_sync is True),
            "path": path_info, "raw": raws}


def run_bench(settings: list[Setting], cfg: BenchConfig, *, hosts: str | None = None,
              progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every setting in turn, each on a fresh local server (or on ``hosts``,
    whose forceSync we cannot know), and its summaries and targets."""
    results: dict[str, Any] = {"meta": machine() | {"config": cfg.__dict__}, "settings": {}}
    for setting in settings:
        if hosts is not None:
            setting = dataclasses.replace(setting, force_sync=None, nodes=1, on_follower=False)
        results["settings"][setting.label] = run_setting(setting, cfg, hosts, progress)
    results["meta"]["loadavg_after"] = machine()["loadavg"]
    return results
