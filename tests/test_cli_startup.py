"""What a command imports: ``zkflock run`` must not pay for what it does not use.

Each case runs the real command in a fresh interpreter (``runpy``, as
``python -m zkflock`` does) against real ZooKeeper, then lists
``sys.modules``. The timing itself lives in the benchmarks
(``zkflock bench startup``); this only keeps heavy modules off the path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from zkflock._bench.startup import measure, summarize

# Prefixes no command below needs: asyncio (only the async face), rich (only
# tables), matplotlib (only bench plots), prometheus_client (only metrics), our
# benchmark, harness and local-server modules, and _ssl (kazoo imports ssl, but
# the command defers it until TLS is used: zkflock._cli.deferred).
HEAVY = ("asyncio", "rich", "matplotlib", "prometheus_client", "zkflock._bench",
         "zkflock._harness", "zkflock._server", "zkflock._locks.aio", "_ssl")
# run and status need no fenced files either.
LOCKS_ONLY = (*HEAVY, "zkflock._files")
# run's fast path (_cli/fast.py) needs neither click nor kazoo, nor threads,
# ssl, logging or subprocess: one socket of its own (_zk/lite.py). (json:
# the probe itself imports it.)
FAST_RUN = (*LOCKS_ONLY, "click", "kazoo", "ssl", "threading", "logging",
            "subprocess", "socket", "signal", "typing", "shlex", "getopt", "pathlib",
            "ast", "dis", "tokenize",  # inspect's: deferred (dataclasses never calls it)
            "zkflock._zk.client", "zkflock._session", "zkflock.cli")

_PROBE = """
import json, runpy, sys
out, argv, preload = sys.argv[1], sys.argv[2:], {preload!r}
for name in preload:
    __import__(name)
sys.argv = ["zkflock", *argv]
try:
    runpy.run_module("zkflock", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
with open(out, "w") as f:
    json.dump({{"code": code, "modules": sorted(sys.modules)}}, f)
"""


def imported_by(tmp_path: Path, hosts: str, *args: str,
                preload: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """Exit code and every module imported by ``zkflock --hosts H ARGS``."""
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", _PROBE.format(preload=preload), str(out), "--hosts",
                    hosts, *args], cwd=tmp_path, check=False, timeout=120,
                   stdout=subprocess.DEVNULL)
    found = json.loads(out.read_text())
    return found["code"], found["modules"]


def heavy(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    """The modules in ``forbidden`` (or below them) that were imported."""
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize("args", [
    ("run", "L", "--", "true"),
    ("run", "-n", "-c", "exit 0", "L"),
    ("--json", "run", "-s", "L", "true"),
], ids=" ".join)
def test_run_fast_path_imports_nothing_heavy(zk_hosts: str, tmp_path: Path,
                                             args: tuple[str, ...]) -> None:
    code, modules = imported_by(tmp_path, zk_hosts, *args)
    assert code == 0
    assert heavy(modules, FAST_RUN) == []
    assert "zkflock._zk.lite" in modules  # it did reach ZooKeeper, its own way


@pytest.mark.parametrize("args", [
    ("-v", "run", "L", "--", "true"),  # what the fast path leaves to the full one
    ("--json", "status"),
], ids=" ".join)
def test_lock_commands_import_nothing_heavy(zk_hosts: str, tmp_path: Path,
                                            args: tuple[str, ...]) -> None:
    code, modules = imported_by(tmp_path, zk_hosts, *args)
    assert code == 0
    assert heavy(modules, LOCKS_ONLY) == []
    assert "kazoo.client" in modules  # it did reach ZooKeeper


def test_file_commands_import_nothing_heavy(zk_hosts: str, tmp_path: Path) -> None:
    for args in (("append", "f.txt", "x"), ("cat", "f.txt"), ("edit", "f.txt", "true")):
        code, modules = imported_by(tmp_path, zk_hosts, *args)
        assert code == 0, args
        assert heavy(modules, HEAVY) == [], args
        assert "zkflock._files.shared_file" in modules


def test_checker_fires_on_an_eager_command_table(zk_hosts: str, tmp_path: Path) -> None:
    # The broken variant: what cli.py did before it loaded commands lazily,
    # importing every command module (bench, demo, server) at start.
    eager = ("zkflock._cli.bench", "zkflock._cli.demo", "zkflock._cli.server")
    code, modules = imported_by(tmp_path, zk_hosts, "run", "L", "--", "true", preload=eager)
    assert code == 0
    found = heavy(modules, FAST_RUN)
    assert "zkflock._bench.scenarios" in found
    assert "zkflock._server.local" in found
    assert "rich.console" in found
    assert "click" in found  # and the fast path's own list sees click come back


def test_startup_benchmark_measures_every_contender(zk_hosts: str) -> None:
    summary = summarize(measure(zk_hosts, rounds=1, warmup=0))
    assert set(summary["median_ms"]) >= {"bare", "kazoo", "zkflock"}
    assert all(ms > 0 for ms in summary["median_ms"].values())
    assert summary["ratios"]["zkflock run/bare python"] > 1  # it does more than start


def test_deferred_ssl_loads_on_first_use() -> None:
    probe = (
        "import sys\n"
        "from zkflock._cli.deferred import defer\n"
        "defer()\n"
        "import kazoo.client, ssl\n"
        "assert '_ssl' not in sys.modules, 'ssl was loaded by import alone'\n"
        "ctx = ssl.create_default_context()\n"
        "assert '_ssl' in sys.modules and sys.modules['ssl'].SSLContext is type(ctx)\n"
        "import kazoo.handlers.utils as u\n"
        "assert u.ssl.SSLError is sys.modules['ssl'].SSLError  # kazoo's binding sees it\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_listed_command_is_registered_by_its_module() -> None:
    # COMMAND_MODULES is how a module plugs in: a name that its module does not
    # register would be listed by --help but not run.
    from zkflock.cli import COMMAND_MODULES, main

    ctx = click.Context(main)
    for name, module in COMMAND_MODULES.items():
        command = main.get_command(ctx, name)
        assert command is not None, (name, module)
        assert command.name == name
