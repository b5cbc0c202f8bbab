"""Geometric merging (pure): the segment list stays short and each byte is
rewritten O(log n) times, whatever the sizes of the appends."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkflock._files import segments
from zkflock._files.meta import FileMeta, decode_meta, encode_meta
from zkflock._files.segments import MAX_SEGMENTS, Segment, covering, merge_start, offsets

Policy = Callable[[Sequence[int], int], int]


def _simulate(appends: list[int], policy: Policy) -> tuple[int, int]:
    """(longest list seen, bytes written in all) over ``appends``."""
    lengths: list[int] = []
    longest = written = 0
    for n in appends:
        k = policy(lengths, n)
        merged = sum(lengths[k:]) + n
        written += merged
        lengths = [*lengths[:k], merged]
        longest = max(longest, len(lengths))
    return longest, written


def _within_bounds(appends: list[int], policy: Policy) -> bool:
    longest, written = _simulate(appends, policy)
    total = sum(appends)
    # Each byte is written once, and rewritten only when its segment grows
    # by half: at most log_1.5(total) times.
    rewrites = written / total
    return longest <= MAX_SEGMENTS and rewrites <= 2 + math.log(max(total, 2), 1.5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=800))
def test_merging_keeps_the_list_short_and_rewrites_logarithmic(appends: list[int]) -> None:
    assert _within_bounds(appends, merge_start)


def test_many_small_appends() -> None:
    longest, written = _simulate([13] * 40_000, merge_start)
    assert longest <= 20  # about log2(40000)
    assert written / (13 * 40_000) < 20


def test_the_check_catches_broken_policies() -> None:
    appends = [13] * 3000
    never = _simulate(appends, lambda lengths, n: len(lengths))
    assert never[0] == 3000
    assert not _within_bounds(appends, lambda lengths, n: len(lengths))
    # Merging everything every time rewrites the whole file per append: quadratic.
    assert not _within_bounds(appends, lambda lengths, n: 0)


def test_hard_bound_on_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sizes that never qualify for a merge (each 3x the next) still stop at MAX_SEGMENTS.
    lengths = [3**i for i in range(60, 0, -1)]
    assert merge_start(lengths, 1) == MAX_SEGMENTS - 1


def test_offsets_and_covering() -> None:
    segs = [Segment(f"{i}-1-{'0' * 16}", n, "0" * 64) for i, n in enumerate([5, 0, 3], 1)]
    assert offsets(segs) == [0, 5, 5]
    assert [covering(segs, at) for at in (0, 4, 5, 7, 8)] == [0, 0, 2, 2, 3]


def test_metadata_round_trip_and_format_1() -> None:
    seg = Segment("2-9-0123456789abcdef", 4, "a" * 64)
    meta = FileMeta(version=2, token=9, segments=(seg,), lineage=1,
                    recent=("2-9-0123456789abcdef",), file_id="ab")
    assert decode_meta(encode_meta(meta), "x") == meta
    assert len(encode_meta(FileMeta(segments=(seg,) * MAX_SEGMENTS))) < 8 * 1024
    v1 = (b'{"format":1,"version":3,"token":5,"object":"3-5-0123456789abcdef","size":7,'
          b'"sha256":"' + b"b" * 64 + b'","recent":["3-5-0123456789abcdef"],"file_id":"cd"}')
    old = decode_meta(v1, "x")
    assert old.segments == (Segment("3-5-0123456789abcdef", 7, "b" * 64),)
    assert (old.size, old.object, old.lineage) == (7, "3-5-0123456789abcdef", 3)
    grown = old.successor(6, "4-6-0123456789abcdef", (*old.segments, seg), extends=True)
    assert (grown.version, grown.lineage, grown.size) == (4, 3, 11)
    assert segments.object_version(grown.object) == 4
