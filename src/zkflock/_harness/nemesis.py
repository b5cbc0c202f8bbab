"""Faults for the torture run. Each nemesis is one fault cycle: strike, wait,
heal. They find the current holder from the lock's own node data (its pid),
as ``zkflock status`` does, so they hit the process inside its critical
section rather than a random one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from zkflock._errors import ZkflockError
from zkflock._harness.proxy import ZkProxy
from zkflock._server.local import LocalZooKeeper
from zkflock._session import Session


class Workers(Protocol):
    def pids(self) -> set[int]: ...
    def replace(self, pid: int) -> None: ...
    def proxies(self, pid: int) -> list[ZkProxy]: ...


@dataclass
class Target:
    """What a nemesis acts on."""

    server: LocalZooKeeper | None
    observer: Session
    name: str
    workers: Workers
    session_timeout: float
    pause: float = 0.0  # the workload's pause inside its critical section

    @property
    def outage(self) -> float:
        """A pause long enough for the holder's session to expire for sure."""
        return 2 * self.session_timeout + 1.0


def holder_pid(target: Target, timeout: float = 5.0) -> int | None:
    """The pid of a worker that has just been granted the lock (None if none).

    Striking a fresh holder lands the fault early in its critical section,
    between its read and its write, where a lost lock does harm; a holder
    seen at a random moment may already have written. If the holder does not
    change within the timeout, the next worker seen holding it is struck
    (within another timeout: on a slow volume the lock is free for much of
    each cycle, so a single look often finds nobody).
    """
    deadline = time.monotonic() + timeout
    first: str | None = None
    while time.monotonic() < deadline + timeout:
        current = _holding(target)
        if current is not None:
            if time.monotonic() >= deadline:
                return current[1]
            if first is None:
                first = current[0]
            elif current[0] != first:
                # Let the new holder read first: struck between grant and
                # read it would lose its lock before doing anything.
                time.sleep(target.pause / 3)
                return current[1]
        time.sleep(0.005)
    return None


def _holding(target: Target) -> tuple[str, int] | None:
    """(node id, pid) of the worker holding the lock now."""
    try:
        for holder in target.observer.holders(target.name):
            if holder.state == "holding" and holder.pid in target.workers.pids():
                return holder.id, holder.pid
    except ZkflockError:
        pass
    return None


def kill_holder(target: Target) -> str:
    pid = holder_pid(target)
    if pid is None:
        return "no holder"
    os.kill(pid, signal.SIGKILL)
    target.workers.replace(pid)
    return f"SIGKILL {pid}"


def pause_holder(target: Target) -> str:
    pid = holder_pid(target)
    if pid is None:
        return "no holder"
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(target.outage)
    finally:
        os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP {pid} for {target.outage:.1f} s"


def restart_zookeeper(target: Target) -> str:
    server = _server(target)
    if server.nodes == 1:
        server.restart_node(1, timeout=60)
        return "restarted the server"
    # A whole ensemble: one node alone cannot serve, so start them together.
    for myid in range(1, server.nodes + 1):
        server.stop_node(myid)
    server.start(timeout=60)
    return f"restarted all {server.nodes} nodes"


def kill_leader(target: Target) -> str:
    server = _server(target)
    leader = server.leader() if server.nodes > 1 else 1
    if leader is None:
        return "no leader"
    server.kill_node(leader)
    time.sleep(target.session_timeout)
    server.start_node(leader, timeout=60)
    return f"killed leader {leader}"


def cut_holder(target: Target) -> str:
    pid = holder_pid(target)
    if pid is None:
        return "no holder"
    proxies = target.workers.proxies(pid)
    for proxy in proxies:
        proxy.freeze()
    try:
        time.sleep(target.outage)
    finally:
        for proxy in proxies:
            proxy.heal()
    return f"cut {pid} from ZooKeeper for {target.outage:.1f} s"


def _server(target: Target) -> LocalZooKeeper:
    if target.server is None:
        raise ZkflockError("this fault needs the local ZooKeeper that torture starts itself")
    return target.server


@dataclass(frozen=True)
class Nemesis:
    name: str
    strike: Callable[[Target], str]
    needs_server: bool = False
    ensemble: bool = False
    interval: float = 1.0  # quiet seconds between strikes


NEMESES: dict[str, Nemesis] = {
    n.name: n
    for n in (
        Nemesis("kill", kill_holder, interval=2.0),
        Nemesis("pause", pause_holder),
        Nemesis("restart", restart_zookeeper, needs_server=True, interval=2.0),
        Nemesis("leader", kill_leader, needs_server=True, ensemble=True, interval=2.0),
        Nemesis("partition", cut_holder),
    )
}


def mixed(names: list[str]) -> Nemesis:
    """All the named faults together, in turn, against one ensemble."""
    chosen = [NEMESES[n] for n in names]
    turn = [0]

    def strike(target: Target) -> str:
        nemesis = chosen[turn[0] % len(chosen)]
        turn[0] += 1
        return f"{nemesis.name}: {nemesis.strike(target)}"

    return Nemesis(
        "all", strike, needs_server=any(n.needs_server for n in chosen),
        ensemble=any(n.ensemble for n in chosen), interval=1.0,
    )
