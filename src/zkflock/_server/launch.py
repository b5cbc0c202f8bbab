"""Launching one ZooKeeper node's JVM: its folder (``data/myid``, ``zoo.cfg``),
its command line, and the process, logging to ``zookeeper.log``.

``LocalZooKeeper`` decides which node starts when and with which settings;
this module only lays out the folder and starts the process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from zkflock._server.config import die_with_parent, java_command


def launch_node(java: str, node_dir: Path, myid: int, cfg: str, log_path: Path, *,
                extra_classpath: Sequence[str] = (),
                background: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """Start node ``myid`` from ``node_dir`` with the rendered ``cfg``; the
    process and the log's offset before it wrote anything.

    A foreground node dies with its parent; every node runs in a new session,
    so that Ctrl-C in the parent's terminal does not reach the JVM."""
    data_dir = node_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "myid").write_text(f"{myid}\n", "ascii")
    (node_dir / "zoo.cfg").write_text(cfg, "utf-8")
    argv = java_command(java, node_dir, extra_classpath)
    if not background:
        argv = die_with_parent(argv)
    with open(log_path, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=node_dir, start_new_session=True,
        )
    return proc, offset
