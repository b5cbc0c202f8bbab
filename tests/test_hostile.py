"""Hostile input: names, oversized values, corrupted metadata and objects,
planted symlinks. Names are fuzzed with hypothesis (bounded examples)."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient

import zkflock
from zkflock import ConfigError, FileCorruptError, InvalidNameError
from zkflock._names import (
    MAX_NAME_BYTES,
    decode_node_name,
    encode_node_name,
    file_meta_path,
    lock_parent,
    normalize_name,
)

ROOT = "/srv/shared"
NS = "/zkflock"
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# Path-ish text: separators, dots, controls, bidi and other format characters
# are far likelier than in plain text().
_TRICKY = st.sampled_from(["/", ".", "..", "\x00", "\n", "\x1b", "\u202e", "\u200d",
                           "\u0301", "e", "é", "%", "%2F", "\x7f", "\u2028", "\ufeff"])
names = st.lists(st.one_of(_TRICKY, st.text(max_size=8)), max_size=12).map("".join)


def _check_contained(name: str, root: str) -> None:
    """Refused, or a relative name inside root with one znode under the namespace."""
    try:
        norm = normalize_name(name, root)
    except InvalidNameError:
        return
    assert norm
    assert not norm.startswith("/")
    assert ".." not in norm.split("/")
    assert not any(ord(ch) < 0x20 or ch == "\x7f" for ch in norm)
    assert len(norm.encode()) <= MAX_NAME_BYTES
    assert unicodedata.normalize("NFC", norm) == norm
    joined = posixpath.normpath(posixpath.join(root, norm))
    assert joined.startswith(root + "/")
    for znode in (lock_parent(norm, NS), file_meta_path(norm, NS)):
        head, _, leaf = znode.rpartition("/")
        assert head in (f"{NS}/locks", f"{NS}/files")
        assert leaf
        assert "/" not in leaf
        assert decode_node_name(leaf) == norm  # injective: no two names share a lock


@FUZZ
@given(names)
def test_fuzzed_names_stay_under_root_and_namespace(name: str) -> None:
    _check_contained(name, ROOT)
    _check_contained(ROOT + "/" + name, ROOT)  # absolute spellings inside root


@FUZZ
@given(st.text(max_size=20), st.text(max_size=20))
def test_distinct_names_never_share_a_znode(a: str, b: str) -> None:
    try:
        na, nb = normalize_name(a), normalize_name(b)
    except InvalidNameError:
        return
    assert (encode_node_name(na) == encode_node_name(nb)) == (na == nb)


@pytest.mark.parametrize("name", [
    "..", "a/../../b", "../etc/passwd", "/etc/passwd", "/srv/shared/../etc/passwd",
    "/srv/sharedX/a", "a\x00b", "a\nb", "tab\there", "\x1b[31mred", "x" * (MAX_NAME_BYTES + 1),
    "a/" + "b" * 256, "invoice\u202etxt.exe", "zero\u200dwidth", "bom\ufeff", "", "/", "./.",
    "line\u2028sep",
])
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        normalize_name(name, ROOT)


def test_absolute_name_inside_root_is_its_relative_name() -> None:
    assert normalize_name("/srv/shared/data//./x.txt", ROOT) == "data/x.txt"


def test_the_fuzz_check_catches_an_escape() -> None:
    """The containment check fails for a normaliser that lets '..' through."""
    joined = posixpath.normpath(posixpath.join(ROOT, "a/../../etc"))
    assert not joined.startswith(ROOT + "/")


def test_unicode_normal_forms_are_one_lock(zk_hosts: str, tmp_path: Path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    assert normalize_name(nfc) == normalize_name(nfd)
    with zkflock.connect(zk_hosts, root=tmp_path) as one, \
            zkflock.connect(zk_hosts, root=tmp_path) as two:
        with one.lock(nfc, timeout=10):
            assert two.lock(nfd).acquire(blocking=False) is False
        assert two.lock(nfd).acquire(timeout=10) is True


# -- oversized values are refused before they are sent --------------------------------


def test_oversized_purpose_is_refused_before_sending(zk_hosts: str, tmp_path: Path,
                                                    kazoo_client: KazooClient) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path) as zk:
        with pytest.raises(ConfigError, match="1 MB"):
            zk.lock("big.txt", purpose="p" * 2_000_000).acquire(timeout=5)
        assert zk.connected  # the server never saw the packet, so it did not hang up
        parent = f"{NS}/locks/big.txt"
        assert not kazoo_client.exists(parent) or kazoo_client.get_children(parent) == []
        with zk.lock("big.txt", purpose="small", timeout=10) as held:
            assert held.token > 0


# -- corrupted metadata and objects -----------------------------------------------------


def _meta(**over: object) -> bytes:
    doc: dict[str, object] = {"format": 1, "version": 1, "token": 5,
                              "object": "1-5-0123456789abcdef", "size": 3,
                              "sha256": "0" * 64, "recent": []}
    doc.update(over)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("raw", "says"), [
    (b"{not json", "not valid zkflock metadata"),
    (b"\xff\xfe", "not valid zkflock metadata"),
    (_meta(version="1"), "non-negative integer"),
    (_meta(size=-3), "non-negative integer"),
    (_meta(version=True), "non-negative integer"),
    (json.dumps({"version": 1}).encode(), "not valid zkflock metadata"),
    (_meta(object="../../../etc/passwd"), "names object"),
    (_meta(object="1-5-0123456789abcdef/../../x"), "names object"),
    (b"[1, 2, 3]", "not valid zkflock metadata"),
    (_meta(recent=[f"{v}-5-0123456789abcdef" for v in range(17)]), "at most 16"),
    (_meta(file_id="../x"), "not a hex id"),
    (_meta(pad="x" * 70_000), "more than the"),
])
def test_corrupted_metadata_is_a_clear_error(raw: bytes, says: str, zk_hosts: str,
                                             tmp_path: Path,
                                             kazoo_client: KazooClient) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path) as zk:
        shared = zk.shared_file("data/data.txt")
        shared.append("ok\n")
        kazoo_client.set(f"{NS}/files/data%2Fdata.txt", raw)
        with pytest.raises(FileCorruptError, match=says) as info:
            shared.read()
        assert "data/data.txt" in str(info.value)
        with pytest.raises(FileCorruptError):
            shared.append("more\n")  # never a write on top of garbage
        assert not (tmp_path.parent / "etc").exists()


def test_checksum_mismatch_is_a_clear_error(zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path) as zk:
        shared = zk.shared_file("c.txt")
        meta = shared.append("the truth\n")
        (shared.objects_dir / meta.object).write_bytes(b"the lies!\n")
        with pytest.raises(FileCorruptError, match="checksum"):
            shared.read()


# -- files zkflock writes: no planted symlink followed, modes within the umask -----------


def test_planted_symlink_at_the_view_is_replaced_not_followed(zk_hosts: str,
                                                              tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    (root / "data" / "data.txt").symlink_to(outside / "victim")
    with zkflock.connect(zk_hosts, root=root) as zk:
        zk.shared_file("data/data.txt").append("line\n")
    assert (outside / "victim").read_text() == "precious\n"
    assert not (root / "data" / "data.txt").is_symlink()
    assert (root / "data" / "data.txt").read_text() == "line\n"


def _outside_files(outside: Path) -> list[Path]:
    return [p for p in outside.rglob("*") if p.is_file()]


def test_planted_symlink_for_the_object_store_is_not_followed(zk_hosts: str,
                                                              tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / ".zkflock").mkdir(parents=True)
    outside.mkdir()
    (root / ".zkflock" / "objects").symlink_to(outside)
    # Refusing is fine; writing outside root is not.
    with zkflock.connect(zk_hosts, root=root) as zk, contextlib.suppress(zkflock.ZkflockError):
        zk.shared_file("x.txt").append("secret\n")
    assert _outside_files(outside) == []


def test_planted_symlinked_directory_does_not_lead_outside_root(zk_hosts: str,
                                                                tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "data").symlink_to(outside)
    with zkflock.connect(zk_hosts, root=root) as zk, contextlib.suppress(zkflock.ZkflockError):
        zk.shared_file("data/data.txt").append("secret\n")
    assert _outside_files(outside) == []


def test_files_are_created_within_the_umask(zk_hosts: str, tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with zkflock.connect(zk_hosts, root=tmp_path) as zk:
            shared = zk.shared_file("private.txt")
            meta = shared.append("for my eyes\n")
    finally:
        os.umask(old)
    for path in (shared.path, shared.objects_dir / meta.object):
        assert path.stat().st_mode & 0o077 == 0, path
