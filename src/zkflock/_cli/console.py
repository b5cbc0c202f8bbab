"""The rich console the commands print tables to."""

from __future__ import annotations

from rich.console import Console


def output_console() -> Console:
    """A console for stdout; on a pipe or a file, whole rows for grep and awk
    instead of rich's 80 columns with truncated cells."""
    console = Console()
    return console if console.is_terminal else Console(width=10_000)
