"""Make ``benchmarks/latest.*`` from several ``zkflock bench`` runs.

    .venv/bin/python benchmarks/merge_latest.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a ``zkflock bench --out`` folder (``results.json`` and
``results.md``). ``latest.md`` is their tables in the given order, each under
its own command and load average; ``latest.json`` holds every setting, its
label suffixed with the run's start time (so two runs of one setting stay
apart), and each run's meta in ``meta.parts``; ``latest.png`` plots them all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from zkflock._bench.plots import plot

HERE = Path(__file__).resolve().parent


def merge(runs: list[Path]) -> dict[str, Any]:
    parts = [json.loads((run / "results.json").read_text()) for run in runs]
    merged: dict[str, Any] = {
        "meta": dict(parts[0]["meta"]),
        "settings": {},
    }
    merged["meta"]["loadavg_after"] = parts[-1]["meta"].get("loadavg_after")
    merged["meta"]["command"] = f"zkflock bench, {len(parts)} runs (benchmarks/latest.md)"
    merged["meta"]["parts"] = [part["meta"] for part in parts]
    for part in parts:
        when = part["meta"]["when"][11:16]  # HH:MM of the ISO time
        for label, setting in part["settings"].items():
            merged["settings"][f"{label} ({when})"] = setting
    return merged


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    runs = [Path(a) for a in argv]
    merged = merge(runs)
    (HERE / "latest.json").write_text(json.dumps(merged, indent=1) + "\n")
    tables = [(run / "results.md").read_text().strip() for run in runs]
    (HERE / "latest.md").write_text("\n\n".join(tables) + "\n")
    plot(merged, str(HERE / "latest.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
