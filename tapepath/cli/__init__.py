"""The ``tapepath`` command line (click): devices, robot, tape, monitor, demo, bench.

Run ``tapepath --help``; docs/cli.md lists every command, option, JSON document and
exit code. :func:`main` is the console script's entry point. Importing this package
does not import click or rich (``tapepath-mtx`` uses :mod:`tapepath.cli.logsetup`
without the ``cli`` extra); ``cli``, the click group, is loaded on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tapepath`` console script; returns the exit status."""
    from tapepath.cli.group import main as run_main  # noqa: PLC0415  (click on demand)

    return run_main(argv)


def __getattr__(name: str) -> Any:
    if name == "cli":
        from tapepath.cli.group import cli  # noqa: PLC0415  (click on demand)

        return cli
    raise AttributeError(f"module 'tapepath.cli' has no attribute {name!r}")
