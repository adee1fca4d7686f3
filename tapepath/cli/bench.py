"""``tapepath bench``: run the benchmarks package (``benchmarks/bench_NAME.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.errors import CliFailure, ExitCode
from tapepath.cli.output import emit_json

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
    """Run the named benchmarks (default: all), printing their figures.

    With --json the figures (the benchmarks' own text) come back in one document:
    ``{"benchmarks", "exit_code", "output"}``.
    """
    root = benchmarks_root()
    if root is None:
        raise CliFailure(
            "not found",
            "no benchmarks package here (run from a source checkout)",
            ExitCode.NOT_FOUND,
        )
    argv = [sys.executable, "-m", "benchmarks", *names]
    if state().json:
        done = subprocess.run(argv, cwd=root, check=False, capture_output=True, text=True)
        emit_json({"benchmarks": list(names), "exit_code": done.returncode, "output": done.stdout})
        code = done.returncode
    else:
        code = subprocess.run(argv, cwd=root, check=False).returncode
    if code:
        sys.exit(code)
