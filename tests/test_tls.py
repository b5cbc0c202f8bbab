"""TLS to ZooKeeper: a TLS-only server (Netty, secure client port) with our own CA.

A client with the CA and a client certificate connects and locks; a plain
client and a client trusting another CA are refused with a clear ConnectError
within connect_timeout, never a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._certs import NETTY_JARS, Certs, make_certs, tls_server_config

import zkflock
from zkflock import ConfigError, ConnectError, LocalZooKeeper, TLSConfig

pytestmark = [
    pytest.mark.skipif(not all(os.path.exists(j) for j in NETTY_JARS),
                       reason="needs the Netty jars for TLS"),
    # kazoo leaves the socket of a failed TLS handshake for the GC to close.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(certs: Certs, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LocalZooKeeper]:
    zk = LocalZooKeeper(tmp_path_factory.mktemp("zk-tls"), tick_time=200, force_sync=False,
                        extra_config=tls_server_config(certs), extra_classpath=NETTY_JARS)
    with zk:
        assert zk.client_ports == zk.secure_ports  # no plain port at all
        yield zk


def _tls(certs: Certs) -> TLSConfig:
    return TLSConfig(ca=certs.ca, cert=certs.client_cert, key=certs.client_key)


def test_tls_client_connects_and_locks(tls_server: LocalZooKeeper, certs: Certs,
                                       tmp_path: Path) -> None:
    with zkflock.connect(tls_server.hosts, root=tmp_path, tls=_tls(certs),
                         connect_timeout=15) as zk, zk.lock("data/data.txt", timeout=10) as held:
        assert held.token > 0
        held.ensure_held()


def test_plain_client_cannot_connect_to_tls_only_server(tls_server: LocalZooKeeper,
                                                        tmp_path: Path) -> None:
    with pytest.raises(ConnectError) as info:
        zkflock.connect(tls_server.hosts, root=tmp_path, connect_timeout=2)
    assert "TLS" in str(info.value)
    assert info.value.exit_code == 3


def test_tls_client_trusting_another_ca_is_refused(tls_server: LocalZooKeeper, certs: Certs,
                                                   tmp_path: Path) -> None:
    wrong = TLSConfig(ca=certs.other_ca, cert=certs.client_cert, key=certs.client_key)
    with pytest.raises(ConnectError, match="TLS"):
        zkflock.connect(tls_server.hosts, root=tmp_path, tls=wrong, connect_timeout=2)


def test_tls_client_without_a_client_certificate_is_refused(
        tls_server: LocalZooKeeper, certs: Certs, tmp_path: Path) -> None:
    # ZooKeeper's secure port demands a client certificate (ssl.clientAuth=need).
    with pytest.raises(ConnectError):
        zkflock.connect(tls_server.hosts, root=tmp_path, tls=TLSConfig(ca=certs.ca),
                        connect_timeout=2)


def test_tls_from_environment(tls_server: LocalZooKeeper, certs: Certs, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZKFLOCK_TLS_CA", certs.ca)
    monkeypatch.setenv("ZKFLOCK_TLS_CERT", certs.client_cert)
    monkeypatch.setenv("ZKFLOCK_TLS_KEY", certs.client_key)
    with zkflock.connect(tls_server.hosts, root=tmp_path, connect_timeout=15) as zk:
        assert zk.connected
        with zk.lock("env.txt", timeout=10) as held:
            assert held.token > 0


def test_cli_flags_carry_tls(tls_server: LocalZooKeeper, certs: Certs, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKFLOCK_")}
    base = [sys.executable, "-m", "zkflock", "--hosts", tls_server.hosts, "--root",
            str(tmp_path)]
    flags = ["--tls-ca", certs.ca, "--tls-cert", certs.client_cert, "--tls-key",
             certs.client_key]
    ok = subprocess.run([*base, *flags, "status", "--json"], env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    plain = subprocess.run([*base, "status"], env={**env, "ZKFLOCK_CONNECT_TIMEOUT": "2"},
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 3, plain.stderr
    assert "TLS" in plain.stderr


def test_tls_config_is_validated(certs: Certs, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        TLSConfig(ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="both"):
        TLSConfig(ca=certs.ca, cert=certs.client_cert)
    with pytest.raises(ConfigError, match="ZKFLOCK_TLS_CA"):
        TLSConfig.from_env({"ZKFLOCK_TLS_CERT": certs.client_cert})
    assert TLSConfig.from_env({}) is None
    with pytest.raises(ConfigError):
        zkflock.connect("127.0.0.1:1", tls={"ca": certs.ca})  # type: ignore[arg-type]
