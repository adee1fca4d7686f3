"""``tapepath bench``: run the benchmarks package (``benchmarks/bench_NAME.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from tapepath.cli.app import common_options, run_command
from tapepath.cli.errors import CliFailure, ExitCode

__all__ = ["bench_cmd", "benchmarks_root"]


def benchmarks_root() -> Path | None:
    """The directory holding the ``benchmarks`` package: the current directory or the
    source checkout tapepath runs from, whichever has it."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "benchmarks" / "__main__.py").is_file():
            return base
    return None


@click.command("bench")
@click.argument("names", nargs=-1)
@common_options
@run_command
def bench_cmd(names: tuple[str, ...]) -> None:
    """Run the named benchmarks (default: all), printing their figures."""
    root = benchmarks_root()
    if root is None:
        raise CliFailure(
            "not found",
            "no benchmarks package here (run from a source checkout)",
            ExitCode.NOT_FOUND,
        )
    done = subprocess.run([sys.executable, "-m", "benchmarks", *names], cwd=root, check=False)
    if done.returncode:
        sys.exit(done.returncode)
