"""LocalZooKeeper and ``zkflock server`` against real ZooKeeper processes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from kazoo.client import KazooClient

import zkflock._server.local as server_module
from zkflock._errors import ServerStartError
from zkflock._server.config import (
    NodePorts,
    allocate_node_ports,
    parse_mode,
    parse_zxid,
    pick_free_ports,
    pid_alive,
    render_zoo_cfg,
)
from zkflock._server.local import LocalZooKeeper
from zkflock.cli import main

SRVR_SAMPLE = """Zookeeper version: 3.8.0-debian, built on 2023-03-21 12:00 UTC
Latency min/avg/max: 0/0.5/3
Received: 12
Sent: 11
Connections: 1
Outstanding: 0
Zxid: 0x10000002a
Mode: follower
Node count: 5
"""


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


# -- pure helpers ------------------------------------------------------------


def test_render_standalone_config() -> None:
    ports = {1: NodePorts(client=2181, peer=2888, election=3888, secure=2281)}
    cfg = render_zoo_cfg(
        myid=1, data_dir="/d", ports=ports, tick_time=200, force_sync=False,
        max_session_timeout=60000, extra_config={"initLimit": "20", "syncLimit": None},
    )
    lines = cfg.splitlines()
    assert "tickTime=200" in lines
    assert "clientPort=2181" in lines
    assert "clientPortAddress=127.0.0.1" in lines
    assert "minSessionTimeout=400" in lines
    assert "maxSessionTimeout=60000" in lines
    assert "forceSync=no" in lines
    assert "admin.enableServer=false" in lines
    assert "4lw.commands.whitelist=*" in lines
    assert "initLimit=20" in lines
    assert not any(line.startswith(("syncLimit=", "server.")) for line in lines)


def test_render_ensemble_and_tls_config() -> None:
    ports = {m: NodePorts(10 * m, 10 * m + 1, 10 * m + 2, 10 * m + 3) for m in (1, 2, 3)}
    cfg = render_zoo_cfg(
        myid=2, data_dir="/d", ports=ports, tick_time=500, force_sync=True,
        max_session_timeout=None,
        extra_config={"clientPort": "", "secureClientPort": "auto"},
    )
    lines = cfg.splitlines()
    assert [line for line in lines if line.startswith("server.")] == [
        "server.1=127.0.0.1:11:12", "server.2=127.0.0.1:21:22", "server.3=127.0.0.1:31:32",
    ]
    assert "secureClientPort=23" in lines
    assert not any(
        line.startswith(("clientPort", "forceSync", "maxSession")) for line in lines
    )


def test_srvr_parsing_and_ports() -> None:
    assert parse_mode(SRVR_SAMPLE) == "follower"
    assert parse_zxid(SRVR_SAMPLE) == 0x10000002A
    assert parse_mode("This ZooKeeper instance is not currently serving requests\n") is None
    ports = pick_free_ports(12)
    assert len(set(ports)) == 12
    node_ports = allocate_node_ports(3)
    assert sorted(node_ports) == [1, 2, 3]
    assert len({p for n in node_ports.values() for p in (n.client, n.peer, n.election)}) == 9


# -- standalone --------------------------------------------------------------


def test_standalone_serves_clients(zk_server: LocalZooKeeper, kazoo_client: KazooClient) -> None:
    assert zk_server.mode(1) == "standalone"
    assert zk_server.leader() == 1
    assert zk_server.four_letter(1, "ruok") == "imok"
    kazoo_client.create("/hello", b"world")
    assert kazoo_client.get("/hello")[0] == b"world"
    assert zk_server.hosts == zk_server.node_hosts(1)


def test_zxid_advances_after_a_write(
    zk_server: LocalZooKeeper, kazoo_client: KazooClient
) -> None:
    before = zk_server.zxid()
    kazoo_client.create("/z", b"1")
    assert zk_server.zxid() > before


def test_bad_config_raises_with_log_tail(tmp_path: Path) -> None:
    zk = LocalZooKeeper(tmp_path, extra_config={"tickTime": "notanumber"})
    with pytest.raises(ServerStartError) as info:
        zk.start(timeout=20)
    assert "notanumber" in str(info.value)  # from the server's own log
    assert "node1" in str(info.value)
    assert not zk.is_running(1)


def test_missing_installation_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # no java
    with pytest.raises(ServerStartError, match="not installed"):
        LocalZooKeeper(tmp_path).start()


def test_start_retries_when_a_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        calls: list[int] = []

        def allocate(nodes: int) -> dict[int, NodePorts]:
            ports = allocate_node_ports(nodes)
            calls.append(nodes)
            if len(calls) == 1:
                ports[1] = NodePorts(taken, ports[1].peer, ports[1].election, ports[1].secure)
            return ports

        monkeypatch.setattr(server_module, "allocate_node_ports", allocate)
        with LocalZooKeeper(tmp_path, tick_time=200, force_sync=False) as zk:
            assert len(calls) == 2
            assert zk.client_ports[1] != taken
            assert zk.mode(1) == "standalone"
            pid = zk.pid(1)
        assert pid is not None
        assert not pid_alive(pid)


# -- ensemble ----------------------------------------------------------------


def _modes(zk: LocalZooKeeper) -> list[str | None]:
    return [zk.mode(myid) for myid in (1, 2, 3)]


def test_ensemble_fails_over_to_a_new_leader(zk_ensemble: LocalZooKeeper) -> None:
    modes = _modes(zk_ensemble)
    assert modes.count("leader") == 1
    assert modes.count("follower") == 2
    old = zk_ensemble.leader()
    assert old is not None

    client = KazooClient(hosts=zk_ensemble.hosts, timeout=10.0)
    client.start(timeout=10.0)
    try:
        client.create("/before", b"kept")
    finally:
        client.stop()
        client.close()

    zk_ensemble.kill_node(old)
    assert not zk_ensemble.is_running(old)
    _wait_for(lambda: zk_ensemble.leader() not in (None, old), timeout=20)
    survivor = next(m for m in (1, 2, 3) if m != old)
    client = KazooClient(hosts=zk_ensemble.node_hosts(survivor), timeout=10.0)
    client.start(timeout=10.0)
    try:
        client.sync("/before")
        assert client.get("/before")[0] == b"kept"
    finally:
        client.stop()
        client.close()


def test_restarted_node_rejoins_as_follower(zk_ensemble: LocalZooKeeper) -> None:
    leader = zk_ensemble.leader()
    assert leader is not None
    zk_ensemble.stop_node(leader)
    # Let the other two elect a leader first: a node that comes back while
    # they still elect may win again (it may have the highest zxid and myid).
    _wait_for(lambda: zk_ensemble.leader() not in (None, leader), timeout=30)
    zk_ensemble.start_node(leader)
    assert zk_ensemble.mode(leader) == "follower"
    assert _modes(zk_ensemble).count("leader") == 1


def test_paused_node_stops_answering(zk_ensemble: LocalZooKeeper) -> None:
    follower = next(m for m in (1, 2, 3) if zk_ensemble.mode(m) == "follower")
    zk_ensemble.pause_node(follower)
    try:
        assert zk_ensemble.mode(follower) is None
        assert zk_ensemble.is_running(follower)
    finally:
        zk_ensemble.resume_node(follower)
    _wait_for(lambda: zk_ensemble.mode(follower) == "follower", timeout=20)
    pids = [zk_ensemble.pid(m) for m in (1, 2, 3)]
    zk_ensemble.pause_node(follower)  # stop() must end a paused node too
    zk_ensemble.stop()
    assert not any(pid is not None and pid_alive(pid) for pid in pids)


# -- the command -------------------------------------------------------------


def test_cli_server_start_status_stop(tmp_path: Path) -> None:
    runner = CliRunner()
    base = str(tmp_path / "srv")
    started = runner.invoke(main, ["server", "start", "--dir", base, "--tick-time", "200",
                                   "--no-force-sync"])
    try:
        assert started.exit_code == 0, started.output
        assert "ZooKeeper running (standalone): hosts 127.0.0.1:" in started.output
        assert "export ZKFLOCK_HOSTS=127.0.0.1:" in started.output

        status = runner.invoke(main, ["--json", "server", "status", "--dir", base])
        assert status.exit_code == 0, status.output
        doc = json.loads(status.output)
        assert doc["running"] is True
        assert [node["mode"] for node in doc["nodes"]] == ["standalone"]
        pid = doc["nodes"][0]["pid"]
        assert pid_alive(pid)
    finally:
        stopped = runner.invoke(main, ["server", "stop", "--dir", base])
    assert stopped.exit_code == 0, stopped.output
    assert not pid_alive(pid)
    status = runner.invoke(main, ["server", "status", "--dir", base])
    assert status.exit_code == 1
    assert "not running" in status.output


def test_cli_reports_errors_with_exit_code(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, ["server", "start", "--dir", str(blocker / "srv")])
    assert result.exit_code == ServerStartError.exit_code
    assert "zkflock: error: cannot start ZooKeeper" in result.output
    assert "Traceback" not in result.output


def test_foreground_server_is_stopped_at_exit(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from zkflock._server.local import LocalZooKeeper\n"
        f"zk = LocalZooKeeper({str(tmp_path)!r}, tick_time=200, force_sync=False).start()\n"
        "print(zk.pid(1), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    pid = int(done.stdout.strip())
    assert not pid_alive(pid)


def _make_certificates(folder: Path) -> dict[str, str]:
    """A CA and a server key pair for 127.0.0.1, made with openssl(1)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=zkflock-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    pem = (folder / "server.key").read_text() + (folder / "server.crt").read_text()
    (folder / "server.pem").write_text(pem)
    return {name: str(folder / name) for name in ("ca.pem", "server.pem", "server.crt",
                                                  "server.key")}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl(1)")
def test_tls_only_server_is_probed_over_tls(tmp_path: Path) -> None:
    certs = _make_certificates(tmp_path)
    config = {
        "clientPort": "",  # TLS only
        "secureClientPort": "auto",
        "secureClientPortAddress": "127.0.0.1",
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": certs["server.pem"], "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": certs["ca.pem"], "ssl.trustStore.type": "PEM",
    }
    # Debian's classpath lacks these Netty jars, which the TLS path needs.
    netty = [f"/usr/share/java/{name}.jar" for name in
             ("netty-codec", "netty-resolver", "netty-transport-native-unix-common")]
    zk = LocalZooKeeper(tmp_path / "zk", tick_time=200, force_sync=False,
                        extra_config=config, extra_classpath=netty)
    with zk:
        assert zk.client_ports == zk.secure_ports
        assert zk.mode(1) == "standalone"
        client = KazooClient(hosts=zk.hosts, use_ssl=True, ca=certs["ca.pem"],
                             certfile=certs["server.crt"], keyfile=certs["server.key"],
                             timeout=10.0)
        client.start(timeout=10.0)
        try:
            client.create("/secure", b"yes")
            assert client.get("/secure")[0] == b"yes"
        finally:
            client.stop()
            client.close()


def test_foreground_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    script = (
        "import time\n"
        "from zkflock._server.local import LocalZooKeeper\n"
        f"zk = LocalZooKeeper({str(tmp_path)!r}, tick_time=200, force_sync=False).start()\n"
        "print(zk.pid(1), flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline().strip())
        assert pid_alive(pid)
    finally:
        parent.kill()  # no atexit, no finally: only the kernel can stop the JVM now
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    _wait_for(lambda: not pid_alive(pid), timeout=15)
