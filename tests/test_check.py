"""The history checker (pure) and the view check: they pass clean runs and flag bad ones."""

from __future__ import annotations

from pathlib import Path

from zkflock._harness.check import Attempt, Read, check, check_reads, parse_history, parse_reads
from zkflock._harness.torture import FILE_NAME, settled_views


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


def test_attempt_of_unknown_outcome_may_have_landed() -> None:
    attempts = [*acks(1, 3), Attempt(2, False, "ConnectError", unknown=True),
                Attempt(None, False, "X")]
    verdict = check(attempts, final=3)
    assert verdict.ok
    assert (verdict.indeterminate, verdict.misreported) == (1, 0)
    assert verdict.attempted == 4


def test_landed_commit_reported_as_failed_is_flagged() -> None:
    # The writer of 2 was told its commit failed (e.g. a raw ESTALE from
    # publishing the view after the commit), yet 2 is in the file.
    attempts = [*acks(1, 3), Attempt(2, False, "OSError")]
    verdict = check(attempts, final=3)
    assert (verdict.misreported, verdict.indeterminate) == (1, 0)
    assert not verdict.ok
    # One of two writers of 2 told "unknown" explains it.
    assert check([*attempts, Attempt(2, False, "ConnectError", unknown=True)], final=3).ok
    # A refused attempt of a value that is not in the file is no error.
    assert check([*acks(1, 2), Attempt(3, False, "StaleTokenError")], final=2).ok


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
    assert attempts == [Attempt(1, True), Attempt(2, False, "unknown", unknown=True)]
    assert check(attempts, final=2).ok
    # Without the invocation record the committed 2 would be unexplained.
    assert not check([Attempt(1, True)], final=2).ok


def test_parse_history_keeps_the_unknown_flag() -> None:
    told = Attempt(4, False, "ConnectError", unknown=True)
    assert parse_history([Attempt(4, False, "invoked").to_json(), told.to_json()]) == [told]


def reads(*values: int | None) -> list[Read]:
    return [Read(v, "" if v is not None else "OSError: [Errno 116] Stale file handle")
            for v in values]


def test_clean_reads_pass() -> None:
    verdict = check_reads([reads(0, 1, 1, 3), reads(2, 5)])
    assert verdict.ok
    assert (verdict.reads, verdict.errors, verdict.backwards, verdict.last) == (6, 0, 0, 5)


def test_failed_read_is_flagged() -> None:
    verdict = check_reads([reads(1, None, 2)])
    assert not verdict.ok
    assert verdict.errors == 1
    assert "Stale file handle" in verdict.first_error


def test_counter_going_backwards_is_flagged() -> None:
    # Per reader: a second reader that is behind the first is no error.
    assert check_reads([reads(3, 4), reads(1, 2)]).ok
    verdict = check_reads([reads(1, 3, 2, 4)])
    assert not verdict.ok
    assert verdict.backwards == 1


def test_parse_reads_skips_a_torn_last_line() -> None:
    lines = [Read(1).to_json(), Read(None, "E").to_json(), '{"value": 3']
    assert parse_reads(lines) == [Read(1), Read(None, "E")]


def test_settled_views_waits_for_every_mount_and_reports_a_stale_one(tmp_path: Path) -> None:
    roots = [tmp_path / name for name in ("a", "b", "c")]
    for root in roots:
        root.mkdir()
        (root / FILE_NAME).write_text("7")
    assert settled_views(roots, "7", wait=0.0) == {str(r): "7" for r in roots}
    # A mount whose view stays a version behind is reported, not waited on for ever.
    (roots[1] / FILE_NAME).write_text("6")
    shown = settled_views(roots, "7", wait=0.3)
    assert shown[str(roots[1])] == "6"
    # Without an expected text, the mounts must agree with each other.
    assert settled_views(roots, None, wait=0.3)[str(roots[1])] != shown[str(roots[0])]
