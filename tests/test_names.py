"""Lock names: normalisation, refusals, and the injective znode encoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkflock import InvalidNameError
from zkflock._names import (
    MAX_COMPONENT_BYTES,
    MAX_NAME_BYTES,
    decode_node_name,
    encode_node_name,
    lock_parent,
    normalize_name,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("data/data.txt", "data/data.txt"),
        ("data//data.txt", "data/data.txt"),
        ("./data/./data.txt", "data/data.txt"),
        ("data/data.txt/", "data/data.txt"),
        ("a b/c%d", "a b/c%d"),
        ("...", "..."),  # three dots is an ordinary name
    ],
)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_nfc_and_nfd_forms_map_to_one_node() -> None:
    composed, decomposed = "caf\u00e9/menu", "cafe\u0301/menu"
    assert composed != decomposed
    assert normalize_name(composed) == normalize_name(decomposed) == composed
    assert lock_parent(normalize_name(composed)) == lock_parent(normalize_name(decomposed))


@pytest.mark.parametrize("raw", ["..", "../x", "a/../b", "a/..", "./../../etc/passwd"])
def test_dot_dot_is_refused(raw: str) -> None:
    with pytest.raises(InvalidNameError, match=r"\.\."):
        normalize_name(raw)


def test_absolute_path_inside_root_is_accepted_relative_to_it() -> None:
    assert normalize_name("/srv/shared/data/data.txt", "/srv/shared") == "data/data.txt"
    assert normalize_name("/srv/shared//data/./x", "/srv/shared/") == "data/x"


@pytest.mark.parametrize(
    ("raw", "root"),
    [
        ("/etc/passwd", "/srv/shared"),
        ("/srv/sharedX/data.txt", "/srv/shared"),  # a prefix of the string is not a parent
        ("/srv/shared/../other/x", "/srv/shared"),
        ("/srv/shared/data.txt", None),  # no root: absolute paths are not names
    ],
)
def test_absolute_path_outside_root_is_refused(raw: str, root: str | None) -> None:
    with pytest.raises(InvalidNameError):
        normalize_name(raw, root)


@pytest.mark.parametrize(
    "raw",
    [
        "a\x00b",  # NUL
        "a\nb",
        "a\tb",
        "a\x1bb",  # ESC: terminal escapes
        "a\x7fb",  # DEL
        "a\x85b",  # C1 control (NEL)
        "a\u202eb",  # RIGHT-TO-LEFT OVERRIDE (Trojan Source)
        "a\u2066b",  # LEFT-TO-RIGHT ISOLATE
        "a\u200bb",  # ZERO WIDTH SPACE
        "a\u2028b",  # LINE SEPARATOR
        "a\ue000b",  # private use
        "a\ufffeb",  # non-character
    ],
)
def test_control_bidi_and_invisible_characters_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        normalize_name(raw)
    assert info.value.name == raw
    assert info.value.exit_code == 2


@pytest.mark.parametrize("raw", ["", ".", "./.", ".//", "/srv", "/srv/."])
def test_empty_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNameError, match="empty"):
        normalize_name(raw, "/srv")


def test_overlong_names_are_refused() -> None:
    ok_component = "a" * MAX_COMPONENT_BYTES
    assert normalize_name(ok_component) == ok_component
    with pytest.raises(InvalidNameError, match="component"):
        normalize_name("a" * (MAX_COMPONENT_BYTES + 1))
    # Bytes count, not characters: 128 two-byte letters are 256 bytes.
    with pytest.raises(InvalidNameError, match="component"):
        normalize_name("\u00e9" * 128)
    long_path = "/".join(["b" * 200] * 6)  # 1205 bytes in 200-byte components
    with pytest.raises(InvalidNameError, match="longer"):
        normalize_name(long_path)
    assert len(long_path.encode()) > MAX_NAME_BYTES


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidNameError):
        normalize_name(b"data.txt")  # type: ignore[arg-type]


def test_encoding_keeps_look_alike_names_apart() -> None:
    # '%2F' literally in a name must not collide with a '/' separator.
    names = ["a/b", "a%2Fb", "a%252Fb", "a%b", "a%25b"]
    encoded = [encode_node_name(n) for n in names]
    assert len(set(encoded)) == len(names)
    for name, enc in zip(names, encoded, strict=True):
        assert "/" not in enc
        assert decode_node_name(enc) == name


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=0,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(names)
def test_property_normalised_names_are_stable_and_encode_injectively(raw: str) -> None:
    try:
        norm = normalize_name(raw)
    except InvalidNameError:
        return
    assert normalize_name(norm) == norm  # idempotent
    assert ".." not in norm.split("/")
    assert not norm.startswith("/")
    enc = encode_node_name(norm)
    assert "/" not in enc
    assert enc not in ("", ".", "..")
    assert "\x00" not in enc
    assert decode_node_name(enc) == norm


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_property_distinct_names_get_distinct_znodes(a: str, b: str) -> None:
    try:
        na, nb = normalize_name(a), normalize_name(b)
    except InvalidNameError:
        return
    assert (na == nb) == (lock_parent(na) == lock_parent(nb))
