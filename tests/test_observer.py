"""The observer interface: pure, no server."""

from __future__ import annotations

import logging

import pytest

from zkflock.metrics import NOOP, Observer, safely


def test_every_event_is_a_no_op_on_the_base_class() -> None:
    events = [name for name in vars(Observer) if not name.startswith("_")]
    assert sorted(events) == sorted([
        "acquire_started", "acquired", "timed_out", "cancelled", "released", "lost",
        "committed", "session_state", "failed",
    ])
    NOOP.acquired("exclusive", "x", 0.1)
    NOOP.committed("f", "accepted", 0.1)


def test_safely_calls_the_observer() -> None:
    seen: list[tuple[object, ...]] = []

    class Recording(Observer):
        def acquired(self, kind: str, name: str, wait: float) -> None:
            seen.append((kind, name, wait))

    safely(Recording().acquired, "read", "a/b", 0.5)
    assert seen == [("read", "a/b", 0.5)]


def test_safely_logs_and_drops_an_observer_bug(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Observer):
        def released(self, kind: str, name: str, held: float) -> None:
            raise ZeroDivisionError("observer bug")

    with caplog.at_level(logging.ERROR, logger="zkflock"):
        safely(Broken().released, "exclusive", "x", 1.0)
    assert "observer" in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_safely_lets_keyboard_interrupt_through() -> None:
    class Interrupted(Observer):
        def lost(self, kind: str, name: str, reason: str) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        safely(Interrupted().lost, "exclusive", "x", "expired")
