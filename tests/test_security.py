"""Authentication and ACLs on real ZooKeeper, and attackers that must fail.

Identities: alice owns the namespace, bob is in her group, eve is nobody's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl_credential

import zkflock
from zkflock import AclPolicy, AuthFailedError, ConfigError, PermissionDeniedError
from zkflock._security import (
    ALL,
    GROUP_PERMS,
    READ,
    Credentials,
    parse_credentials,
    resolve_credentials,
)

ALICE = ("digest", "alice:alice-pw")
BOB_ID = AclPolicy.digest_id("bob", "bob-pw")
ADMIN_ID = AclPolicy.digest_id("root", "root-pw")
ALICE_ID = AclPolicy.digest_id("alice", "alice-pw")
NS = "/zkflock"


def _kazoo(hosts: str, auth: str | None = None) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=10.0,
                         auth_data=[("digest", auth)] if auth else None)
    client.start(timeout=10.0)
    return client


@pytest.fixture
def clients(zk_hosts: str) -> Iterator[dict[str, KazooClient]]:
    """Raw kazoo clients: 'anon' (no credentials), 'eve', 'root' (the admin)."""
    made = {"anon": _kazoo(zk_hosts), "eve": _kazoo(zk_hosts, "eve:eve-pw"),
            "root": _kazoo(zk_hosts, "root:root-pw")}
    yield made
    for client in made.values():
        client.stop()
        client.close()


def _acl(client: KazooClient, path: str) -> set[tuple[str, str, int]]:
    acls, _ = client.get_acls(path)
    return {(a.id.scheme, a.id.id, a.perms) for a in acls}


# -- pure: credentials and policy -----------------------------------------------------


def test_digest_id_is_zookeepers() -> None:
    assert AclPolicy.digest_id("alice", "alice-pw") == make_digest_acl_credential(
        "alice", "alice-pw")


def test_credentials_from_argument_then_env_then_file(tmp_path: Path) -> None:
    secret = tmp_path / "auth"
    secret.write_text("carol:from-file\n")
    secret.chmod(0o600)
    env = {"ZKFLOCK_AUTH": "dave:from-env", "ZKFLOCK_AUTH_FILE": str(secret)}
    assert resolve_credentials(ALICE, env) == Credentials("alice", "alice-pw")
    assert resolve_credentials(None, env) == Credentials("dave", "from-env")
    assert resolve_credentials(None, {"ZKFLOCK_AUTH_FILE": str(secret)}) == Credentials(
        "carol", "from-file")
    assert resolve_credentials(None, {}) is None
    assert "from-env" not in repr(resolve_credentials(None, env))  # never in logs


def test_auth_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "auth"
    secret.write_text("carol:pw\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        resolve_credentials(None, {"ZKFLOCK_AUTH_FILE": str(secret)})
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_credentials(None, {"ZKFLOCK_AUTH_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("bad", ["nopassword", ":pw", "user:", "us er:pw"])
def test_malformed_credentials_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_credentials(bad, "ZKFLOCK_AUTH")


def test_acl_policies() -> None:
    alice = Credentials("alice", "alice-pw")
    assert AclPolicy().entries(alice) == [("digest", ALICE_ID, ALL), ("world", "anyone", READ)]
    team = AclPolicy(group=(BOB_ID,), admin=ADMIN_ID, world_read=False).entries(alice)
    assert team == [("digest", ALICE_ID, ALL), ("digest", ADMIN_ID, ALL),
                    ("digest", BOB_ID, GROUP_PERMS)]
    with pytest.raises(ConfigError, match="leaves out"):
        AclPolicy(owner=BOB_ID).entries(alice)  # alice could not delete her own nodes
    with pytest.raises(ConfigError, match="digest id"):
        AclPolicy(group=("bob:plain-password",))
    with pytest.raises(ConfigError, match="credentials"):
        zkflock.connect("127.0.0.1:1", acl=AclPolicy())
    with pytest.raises(ConfigError, match="not supported"):
        zkflock.connect("127.0.0.1:1", auth=("sasl", "x"))


# -- ACLs on what zkflock creates -------------------------------------------------------


def test_every_node_zkflock_creates_gets_owner_all_world_read(
        zk_hosts: str, tmp_path: Path, kazoo_client: KazooClient) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE) as zk:
        zk.shared_file("data/data.txt").append("hello\n")
        with zk.lock("data/data.txt", timeout=10):
            parent = f"{NS}/locks/data%2Fdata.txt"
            node = kazoo_client.get_children(parent)[0]
            paths = [NS, f"{NS}/locks", parent, f"{parent}/{node}",
                     f"{NS}/files/data%2Fdata.txt"]
            # ZooKeeper shows the hash only to clients with ADMIN: ask as alice.
            owner = _kazoo(zk_hosts, "alice:alice-pw")
            try:
                for path in paths:
                    assert _acl(owner, path) == {("digest", ALICE_ID, ALL),
                                                 ("world", "anyone", READ)}, path
            finally:
                owner.stop()
                owner.close()


def test_without_auth_nodes_stay_open(zk_hosts: str, tmp_path: Path,
                                      kazoo_client: KazooClient,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZKFLOCK_AUTH", raising=False)
    monkeypatch.delenv("ZKFLOCK_AUTH_FILE", raising=False)
    with zkflock.connect(zk_hosts, root=tmp_path) as zk, zk.lock("open.txt", timeout=10):
        assert _acl(kazoo_client, f"{NS}/locks/open.txt") == {("world", "anyone", ALL)}


@pytest.mark.parametrize("source", ["env", "file"])
def test_credentials_from_environment_reach_zookeeper(
        source: str, zk_hosts: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZKFLOCK_AUTH", raising=False)
    monkeypatch.delenv("ZKFLOCK_AUTH_FILE", raising=False)
    if source == "env":
        monkeypatch.setenv("ZKFLOCK_AUTH", "alice:alice-pw")
    else:
        secret = tmp_path / "auth"
        secret.write_text("alice:alice-pw\n")
        secret.chmod(0o600)
        monkeypatch.setenv("ZKFLOCK_AUTH_FILE", str(secret))
    with zkflock.connect(zk_hosts, root=tmp_path) as zk, zk.lock("env.txt", timeout=10):
        owner = _kazoo(zk_hosts, "alice:alice-pw")
        try:
            assert ("digest", ALICE_ID, ALL) in _acl(owner, f"{NS}/locks/env.txt")
        finally:
            owner.stop()
            owner.close()


# -- wrong passwords fail fast and clearly ----------------------------------------------


def test_wrong_password_is_auth_failed_at_connect(zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE) as zk:
        zk.lock("x.txt").acquire(timeout=10)
        # ZooKeeper itself accepts any password: a wrong one is just another
        # identity. This is the hole the namespace check closes.
        raw = _kazoo(zk_hosts, "alice:wrong")
        assert raw.connected
        raw.stop()
        raw.close()
        with pytest.raises(AuthFailedError, match="another password") as info:
            zkflock.connect(zk_hosts, root=tmp_path, auth=("digest", "alice:wrong"),
                            connect_timeout=5)
        assert info.value.exit_code == 10


def test_group_member_is_checked_through_the_masked_acl(zk_hosts: str, tmp_path: Path) -> None:
    policy = AclPolicy(group=(BOB_ID,))
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE, acl=policy) as alice:
        alice.shared_file("team.txt").append("from alice\n")
    bob_auth = ("digest", "bob:bob-pw")
    with zkflock.connect(zk_hosts, root=tmp_path, auth=bob_auth, acl=policy) as bob:
        bob.shared_file("team.txt").append("from bob\n")
        assert bob.shared_file("team.txt").read() == "from alice\nfrom bob\n"
    with pytest.raises(AuthFailedError):
        zkflock.connect(zk_hosts, root=tmp_path, auth=("digest", "bob:wrong"), acl=policy)


def test_cli_wrong_password_exits_10(zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE) as zk:
        zk.lock("x.txt").acquire(timeout=10)
        secret = tmp_path / "auth"
        secret.write_text("alice:wrong\n")
        secret.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZKFLOCK_")}
        cmd = [sys.executable, "-m", "zkflock", "--hosts", zk_hosts, "--auth-file",
               str(secret), "status"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 10, done.stderr
        assert "password" in done.stderr
        secret.write_text("alice:alice-pw\n")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "x.txt" in done.stdout


# -- attackers ----------------------------------------------------------------------


@pytest.mark.parametrize("attacker", ["anon", "eve"])
def test_attacker_cannot_steal_a_lock_or_rewrite_a_file(
        attacker: str, zk_hosts: str, tmp_path: Path, clients: dict[str, KazooClient]) -> None:
    evil = clients[attacker]
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE) as zk:
        shared = zk.shared_file("data/data.txt")
        shared.append("alice's line\n")
        held = zk.lock("data/data.txt", timeout=10)
        held.acquire()
        parent = f"{NS}/locks/data%2Fdata.txt"
        node = f"{parent}/{evil.get_children(parent)[0]}"
        meta = f"{NS}/files/data%2Fdata.txt"
        with pytest.raises(NoAuthError):
            evil.delete(node)
        with pytest.raises(NoAuthError):
            evil.set(meta, b'{"version":99}')
        with pytest.raises(NoAuthError):  # no queueing in front of or behind the holder
            evil.create(f"{parent}/x-0000000001", b"", ephemeral=True)
        with pytest.raises(NoAuthError):
            evil.delete(meta)
        assert evil.exists(node) is not None
        held.ensure_held()
        assert [h.state for h in zk.holders("data/data.txt")] == ["holding"]
        held.release()
        assert shared.read() == "alice's line\n"


def test_another_identity_through_zkflock_gets_permission_denied(
        zk_hosts: str, tmp_path: Path) -> None:
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE) as zk:
        zk.shared_file("f.txt").append("mine\n")
        with zk.lock("f.txt", timeout=10) as held:
            with zkflock.connect(zk_hosts, root=tmp_path, auth=("digest", "eve:eve-pw")) as eve:
                with pytest.raises(PermissionDeniedError) as info:
                    eve.lock("f.txt").acquire(timeout=5)
                assert info.value.exit_code == 11
                with pytest.raises(PermissionDeniedError):
                    eve.shared_file("other.txt").append("x")  # namespace is alice's
                assert eve.shared_file("f.txt").read() == "mine\n"  # world may read
            held.ensure_held()


def test_open_acl_lets_the_attacker_in(zk_hosts: str, tmp_path: Path,
                                       clients: dict[str, KazooClient],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: without auth the same attack succeeds, so the
    attacker tests above can fail."""
    monkeypatch.delenv("ZKFLOCK_AUTH", raising=False)
    monkeypatch.delenv("ZKFLOCK_AUTH_FILE", raising=False)
    with zkflock.connect(zk_hosts, root=tmp_path) as zk, zk.lock("d.txt", timeout=10):
        parent = f"{NS}/locks/d.txt"
        evil = clients["anon"]
        evil.delete(f"{parent}/{evil.get_children(parent)[0]}")
        assert evil.get_children(parent) == []  # the lock is there for the taking


def test_admin_may_break_a_lock(zk_hosts: str, tmp_path: Path,
                                clients: dict[str, KazooClient]) -> None:
    policy = AclPolicy(admin=ADMIN_ID)
    with zkflock.connect(zk_hosts, root=tmp_path, auth=ALICE, acl=policy) as zk, \
            zk.lock("stuck.txt", timeout=10):
        parent = f"{NS}/locks/stuck.txt"
        admin = clients["root"]
        admin.delete(f"{parent}/{admin.get_children(parent)[0]}")
        assert admin.get_children(parent) == []


# -- the demo and the torture run, unchanged, with auth and ACLs on -----------------------


def _zkflock(*args: str, cwd: Path, auth: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKFLOCK_")}
    env["ZKFLOCK_AUTH"] = auth
    return subprocess.run([sys.executable, "-m", "zkflock", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_demo_runs_with_auth_and_its_nodes_are_protected(
        zk_hosts: str, tmp_path: Path, clients: dict[str, KazooClient]) -> None:
    done = _zkflock("--hosts", zk_hosts, "demo", "--clients", "3", "--hold", "0.1",
                    cwd=tmp_path, auth="alice:alice-pw")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "check passed" in done.stdout
    with pytest.raises(NoAuthError):  # the namespace the demo made is alice's
        clients["eve"].create(f"{NS}/locks/intruder", b"")
    with pytest.raises(NoAuthError):
        clients["anon"].create(f"{NS}/locks/intruder", b"")


def test_torture_passes_with_auth(zk_server: zkflock.LocalZooKeeper, tmp_path: Path) -> None:
    anon, eve = _kazoo(zk_server.hosts), _kazoo(zk_server.hosts, "eve:eve-pw")
    try:
        before = set(anon.get_children("/"))
        done = _zkflock("--hosts", zk_server.hosts, "torture", "--nemesis", "partition",
                        "--clients", "2", "--duration", "4", cwd=tmp_path,
                        auth="alice:alice-pw")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "PASS" in done.stdout
        made = [n for n in set(anon.get_children("/")) - before
                if n.startswith("zkflock-torture-")]
        assert len(made) == 1
        assert ("digest", "alice:x", ALL) in _acl(anon, f"/{made[0]}")  # hash masked
        with pytest.raises(NoAuthError):
            eve.create(f"/{made[0]}/locks/intruder", b"")
    finally:
        for client in (anon, eve):
            client.stop()
            client.close()
