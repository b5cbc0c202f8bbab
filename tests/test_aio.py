"""The asyncio face inside a running event loop, against real ZooKeeper:
the loop keeps running while a task waits, and cancelling the task cancels
the underlying acquire (its node is deleted)."""



from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from _family_workers import wait_until
from zkflock import AsyncLock, Lock, LockTimeoutError, Session

NAME = "data/async.txt"


class Ticker:
    """A task that counts while the loop is free to run it."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1


async def _ticking(coro_factory: Callable[[Ticker], object]) -> Ticker:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    try:
        await coro_factory(ticker)  # type: ignore[misc]
    finally:
        task.cancel()
    return ticker


def test_async_with_waits_off_the_loop(sessions: Callable[[], Session]) -> None:
    holder = sessions().lock(NAME)
    assert holder.acquire()
    waiter = sessions().lock(NAME, timeout=30)
    seen: dict[str, int] = {}

    async def scenario(ticker: Ticker) -> None:
        async def release_later() -> None:
            while ticker.ticks < 20:  # the loop ran while the other task waited
                await asyncio.sleep(0.01)
            seen["at_release"] = ticker.ticks
            await holder.release_async()

        releaser = asyncio.create_task(release_later())
        async with waiter as held:
            assert held is waiter
            assert held.token > 0
            seen["held"] = ticker.ticks
        await releaser

    asyncio.run(_ticking(scenario))
    assert seen["held"] >= seen["at_release"] >= 20
    assert not waiter.is_held


def test_ticker_check_catches_a_blocking_acquire(sessions: Callable[[], Session]) -> None:
    # The broken variant: a blocking acquire called on the loop stalls it.
    holder = sessions().lock(NAME)
    assert holder.acquire()
    waiter = sessions().lock(NAME)
    counts: list[int] = []

    async def scenario(ticker: Ticker) -> None:
        await asyncio.sleep(0.05)
        before = ticker.ticks
        assert waiter.acquire(timeout=0.5) is False  # blocks the loop
        counts.append(ticker.ticks - before)

    asyncio.run(_ticking(scenario))
    assert counts == [0]
    holder.release()


def test_cancelling_the_task_cancels_the_acquire(sessions: Callable[[], Session]) -> None:
    holder, observer = sessions().lock(NAME), sessions()
    assert holder.acquire()
    waiter = sessions().lock(NAME, timeout=60)

    async def scenario() -> None:
        task = asyncio.create_task(waiter.acquire_async())
        deadline = time.monotonic() + 10
        while len(observer.holders(NAME)) < 2:
            assert time.monotonic() < deadline, "the waiter never queued"
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(observer.holders(NAME)) == 1  # the cancelled node is gone
    assert not waiter.is_held
    holder.release()
    assert waiter.acquire(timeout=10)  # the lock object is still usable
    waiter.release()


def test_cancel_before_the_thread_started_leaves_nothing(
    sessions: Callable[[], Session],
) -> None:
    holder, observer = sessions().lock(NAME), sessions()
    assert holder.acquire()
    waiter = sessions().lock(NAME, timeout=60)

    async def scenario() -> None:
        task = asyncio.create_task(waiter.acquire_async())
        await asyncio.sleep(0)  # cancel as early as possible
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    wait_until(lambda: len(observer.holders(NAME)) == 1, 10, "the waiter's node to go")
    holder.release()


def test_aio_face_acquire_release_and_timeout(sessions: Callable[[], Session]) -> None:
    zk, other = sessions(), sessions()
    lock: Lock = zk.read_lock(NAME)
    face = lock.aio
    assert isinstance(face, AsyncLock)

    async def scenario() -> None:
        assert await face.acquire()
        assert face.is_held
        assert face.token == lock.token
        face.ensure_held()
        writer = other.write_lock(NAME, timeout=0.2)
        assert await writer.aio.acquire(timeout=0.2) is False
        with pytest.raises(LockTimeoutError):
            async with writer.aio:
                pytest.fail("ran without the lock")
        await face.release()
        async with other.semaphore(NAME + ".sem", 2).aio as held:
            assert held.is_held

    asyncio.run(scenario())
    assert not lock.is_held
