"""The pure decision core: node names, queue order, and ``decide`` for every kind.

No server: ``_protocol`` is a pure function of a children listing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import _protocol_reference as reference
from zkflock import ConfigError
from zkflock._locks.protocol import (
    EXCLUSIVE,
    READ,
    SEMAPHORE,
    Contender,
    Decision,
    NotQueuedError,
    decide,
    decide_exclusive,
    decide_read,
    decide_semaphore,
    node_prefix,
    parse_node,
    queue,
)

_guids = itertools.count(1)


def node(kind: str, seq: int) -> str:
    """A node name as ZooKeeper would create it: prefix + 10-digit sequence."""
    guid = f"{next(_guids):032x}"
    leases = int(kind[1:]) if kind.startswith("s") else 1
    base = SEMAPHORE if kind.startswith("s") else kind
    return f"{node_prefix(base, guid, leases)}{seq:010d}"


# -- parse_node and queue -----------------------------------------------------


def test_parse_node_reads_kind_guid_and_sequence() -> None:
    guid = "0123456789abcdef0123456789abcdef"
    assert parse_node(f"x-{guid}-0000000007") == Contender(
        f"x-{guid}-0000000007", EXCLUSIVE, 1, guid, 7
    )
    assert parse_node(f"r-{guid}-0000000012") == Contender(
        f"r-{guid}-0000000012", READ, 1, guid, 12
    )
    assert parse_node(f"s4-{guid}-0000000003") == Contender(
        f"s4-{guid}-0000000003", SEMAPHORE, 4, guid, 3
    )


@pytest.mark.parametrize(
    "name",
    [
        "lock-0000000001",  # somebody else's recipe
        "_c_0123456789abcdef0123456789abcdef-__lock__0000000001",  # kazoo's protected name
        "x-0123456789ABCDEF0123456789ABCDEF-0000000001",  # upper-case guid
        "x-0123456789abcdef-0000000001",  # short guid
        "x-0123456789abcdef0123456789abcdef-123",  # sequence shorter than ZooKeeper makes
        "s0-0123456789abcdef0123456789abcdef-0000000001",  # zero leases
        "w-0123456789abcdef0123456789abcdef-0000000001",  # unknown kind
        "x-0123456789abcdef0123456789abcdef-0000000001-extra",
        "x-0123456789abcdef0123456789abcdef-0000000001\n",  # `$` let this one in
        "",
    ],
)
def test_parse_node_ignores_names_that_are_not_ours(name: str) -> None:
    assert parse_node(name) is None


def test_queue_orders_by_sequence_not_by_listing_or_name() -> None:
    a, b, c = node("x", 3), node("r", 1), node("x", 2)
    order = [contender.name for contender in queue([a, "foreign-node", b, c])]
    assert order == [b, c, a]


def test_node_prefix_round_trips_through_parse() -> None:
    guid = "f" * 32
    for kind, leases in ((EXCLUSIVE, 1), (READ, 1), (SEMAPHORE, 5)):
        parsed = parse_node(node_prefix(kind, guid, leases) + "0000000042")
        assert parsed is not None
        assert (parsed.kind, parsed.leases, parsed.guid, parsed.seq) == (kind, leases, guid, 42)


# -- exclusive ------------------------------------------------------------------


def test_exclusive_first_holds_and_each_waiter_watches_its_predecessor() -> None:
    nodes = [node("x", seq) for seq in (10, 11, 12, 13)]
    listing = list(reversed(nodes))  # the server lists in no particular order

    first = decide(listing, nodes[0])
    assert first.held
    assert first.position == 0
    assert first.watch == ()

    second = decide(listing, nodes[1])
    assert not second.held
    assert second.watch == (nodes[0],)
    assert second.grant_on_delete  # it is next: the holder's deletion is the grant

    for i in (2, 3):
        later = decide(listing, nodes[i])
        assert not later.held
        assert later.position == i
        assert later.watch == (nodes[i - 1],)  # only its predecessor: no herd
        assert not later.grant_on_delete  # the predecessor may leave without a grant


def test_not_queued_when_our_node_is_missing() -> None:
    with pytest.raises(NotQueuedError):
        decide([node("x", 1)], node("x", 2))


# -- read / write ---------------------------------------------------------------


def test_readers_share() -> None:
    r0, r1, r2 = node("r", 0), node("r", 1), node("r", 2)
    for me in (r0, r1, r2):
        assert decide([r0, r1, r2], me).held


def test_reader_watches_only_the_nearest_earlier_writer() -> None:
    x0, r1, x2, r3, r4 = node("x", 0), node("r", 1), node("x", 2), node("r", 3), node("r", 4)
    listing = [x0, r1, x2, r3, r4]

    behind_one = decide(listing, r1)
    assert not behind_one.held
    assert behind_one.watch == (x0,)
    assert behind_one.grant_on_delete  # the only writer ahead

    behind_two = decide(listing, r4)
    assert not behind_two.held
    assert behind_two.watch == (x2,)  # not the reader r3 before it, not the older x0
    assert not behind_two.grant_on_delete  # x0 is still ahead


def test_writer_watches_its_immediate_predecessor_even_a_reader() -> None:
    r0, r1, x2 = node("r", 0), node("r", 1), node("x", 2)
    decision = decide([r0, r1, x2], x2)
    assert not decision.held
    assert decision.watch == (r1,)
    assert not decision.grant_on_delete  # r0 may still hold when r1 leaves


def test_writer_after_readers_left_holds() -> None:
    x5 = node("x", 5)
    assert decide([x5, node("r", 6)], x5).held
    assert not decide([x5, r6 := node("r", 6)], r6).held


def test_downgrade_reader_is_not_blocked_by_its_own_sessions_writer() -> None:
    mine_x, other_x = node("x", 0), node("x", 2)
    r1, r3 = node("r", 1), node("r", 3)
    listing = [mine_x, r1, other_x, r3]

    assert not decide(listing, r1).held  # without `own` the writer blocks
    assert decide(listing, r1, own=[mine_x]).held  # downgrade: our own writer does not
    # ... but somebody else's writer still does.
    blocked = decide(listing, r3, own=[mine_x])
    assert not blocked.held
    assert blocked.watch == (other_x,)


def test_upgrade_is_refused_rather_than_waiting_forever() -> None:
    mine_r, x1 = node("r", 0), node("x", 1)
    with pytest.raises(ConfigError, match="upgrad"):
        decide([mine_r, x1], x1, own=[mine_r])
    # Without the own-read the same writer simply waits.
    assert decide([mine_r, x1], x1).watch == (mine_r,)


# -- semaphore ------------------------------------------------------------------


def test_semaphore_first_waiter_watches_all_holders_later_waiters_their_predecessor() -> None:
    nodes = [node("s3", seq) for seq in range(6)]
    for me in nodes[:3]:
        assert decide(nodes, me).held

    first_waiter = decide(nodes, nodes[3])
    assert not first_waiter.held
    assert set(first_waiter.watch) == set(nodes[:3])
    assert first_waiter.grant_on_delete  # any holder leaving lets it in
    assert first_waiter.signal_grant

    for i in (4, 5):
        later = decide(nodes, nodes[i])
        assert not later.held
        assert later.watch == (nodes[i - 1],)
        assert not later.grant_on_delete
        assert later.signal_grant  # its predecessor touches its node when granted


def test_semaphore_of_one_is_a_plain_mutex() -> None:
    s0, s1 = node("s1", 0), node("s1", 1)
    assert decide([s0, s1], s0).held
    waiter = decide([s0, s1], s1)
    assert waiter.watch == (s0,)
    assert waiter.grant_on_delete
    assert not waiter.signal_grant


def test_semaphore_callers_disagreeing_on_max_leases_is_a_config_error() -> None:
    a, b = node("s2", 0), node("s3", 1)
    with pytest.raises(ConfigError, match="max_leases"):
        decide([a, b], b)


def test_semaphore_and_lock_on_one_name_is_a_config_error() -> None:
    s0, x1, s2 = node("s2", 0), node("x", 1), node("s2", 2)
    with pytest.raises(ConfigError):
        decide([s0, x1], x1)
    with pytest.raises(ConfigError):
        decide([x1, s2], s2)


# -- the fast decision equals the old one (tests/_protocol_reference.py) --------

_GUIDS = st.sampled_from(["0" * 32, "0123456789abcdef" * 2, "f" * 32])
_KINDS = st.sampled_from(["x", "r", "s1", "s2", "s3"])
# Mostly ZooKeeper's 10 digits; sometimes more (still ours), or fewer (not ours).
_SEQS = st.one_of(
    st.integers(0, 40).map(lambda n: f"{n:010d}"),
    st.integers(0, 40).map(lambda n: f"{n:011d}"),
    st.integers(10**10, 10**10 + 3).map(str),
    st.integers(0, 40).map(str),
)
_OURS = st.builds(lambda k, g, s: f"{k}-{g}-{s}", _KINDS, _GUIDS, _SEQS)
# Names that are not ours, several ending in 10 digits like ours do.
_FOREIGN = st.one_of(
    st.builds(lambda s: f"lock-{s}", _SEQS),
    st.builds(lambda g, s: f"x-{g.upper()}-{s}", _GUIDS, _SEQS),
    st.builds(lambda g, s: f"w-{g}-{s}", _GUIDS, _SEQS),
    st.builds(lambda g, s: f"s0-{g}-{s}", _GUIDS, _SEQS),
    st.builds(lambda g, s: f"x-{g}-{s}\n", _GUIDS, _SEQS),
    st.text(alphabet="xrs-0123456789abcdef", max_size=12),
)


def _outcome(decider: Callable[..., Decision], listing: Iterable[str], me: str,
             own: list[str]) -> object:
    try:
        return decider(listing, me, own)
    except (ConfigError, NotQueuedError) as exc:
        return (type(exc), str(exc))


@settings(max_examples=1500, deadline=None)
@given(
    listing=st.lists(st.one_of(_OURS, _OURS, _FOREIGN), max_size=14),
    pick=st.integers(0, 20),
    stranger=_OURS,
    own_picks=st.lists(st.integers(0, 20), max_size=3),
)
def test_fast_decision_equals_the_reference_model(
    listing: list[str], pick: int, stranger: str, own_picks: list[int]
) -> None:
    me = listing[pick % len(listing)] if listing and pick < 18 else stranger
    own = [listing[i % len(listing)] for i in own_picks] if listing else []
    pairs = (
        (decide, reference.decide),
        (decide_exclusive, reference.decide_exclusive),
        (decide_read, reference.decide_read),
        (decide_semaphore, reference.decide_semaphore),
    )
    for fast, old in pairs:
        assert _outcome(fast, listing, me, own) == _outcome(old, listing, me, own)
    # A generator, not a list, takes the general path.
    assert _outcome(decide, iter(listing), me, own) == _outcome(
        reference.decide, iter(listing), me, own
    )


def test_fast_decision_orders_a_full_listing_by_sequence() -> None:
    nodes = [node("x", seq) for seq in range(100)]
    listing = nodes[::-1]
    for i in (1, 50, 99):
        assert decide(listing, nodes[i]) == reference.decide(listing, nodes[i])
        assert decide(listing, nodes[i]).watch == (nodes[i - 1],)
