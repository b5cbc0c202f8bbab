"""The pure history checker: it passes clean histories and flags bad ones."""

from __future__ import annotations

from zkflock._harness.check import Attempt, check, parse_history


def acks(*values: int) -> list[Attempt]:
    return [Attempt(v, True) for v in values]


def test_clean_history_passes() -> None:
    verdict = check(acks(1, 2, 3, 4), final=4)
    assert verdict.ok
    assert (verdict.attempted, verdict.acknowledged) == (4, 4)
    assert (verdict.lost, verdict.duplicated) == (0, 0)


def test_lost_update_is_flagged() -> None:
    # A paused writer read 2, woke after others wrote 3 and 4, and wrote 3.
    verdict = check(acks(1, 2, 3, 4, 3), final=3)
    assert not verdict.ok
    assert verdict.lost == 2
    assert verdict.duplicated == 1


def test_rollback_is_lost_even_without_duplicates() -> None:
    verdict = check(acks(1, 2, 3), final=2)
    assert not verdict.ok
    assert verdict.lost == 1
    assert verdict.duplicated == 0


def test_duplicate_is_flagged() -> None:
    verdict = check(acks(1, 2, 2, 3), final=3)
    assert verdict.duplicated == 1
    assert not verdict.ok


def test_unacknowledged_attempt_may_have_landed() -> None:
    attempts = [*acks(1, 3), Attempt(2, False, "ConnectError"), Attempt(None, False, "X")]
    verdict = check(attempts, final=3)
    assert verdict.ok
    assert verdict.indeterminate == 1
    assert verdict.attempted == 4


def test_jump_nobody_attempted_is_unexplained() -> None:
    verdict = check(acks(1, 3), final=3)
    assert verdict.unexplained == 1
    assert not verdict.ok


def test_parse_history_skips_a_torn_last_line() -> None:
    lines = [Attempt(1, True).to_json(), Attempt(None, False, "E").to_json(), '{"value": 3, "o']
    assert parse_history(lines) == [Attempt(1, True), Attempt(None, False, "E")]


def test_invocation_without_outcome_is_unknown() -> None:
    lines = [
        Attempt(1, False, "invoked").to_json(), Attempt(1, True).to_json(),
        Attempt(2, False, "invoked").to_json(),  # killed after committing 2
    ]
    attempts = parse_history(lines)
    assert attempts == [Attempt(1, True), Attempt(2, False, "unknown")]
    assert check(attempts, final=2).ok
    # Without the invocation record the committed 2 would be unexplained.
    assert not check([Attempt(1, True)], final=2).ok
