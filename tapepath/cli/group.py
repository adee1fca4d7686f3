"""The ``tapepath`` click group with every command (see :mod:`tapepath.cli`)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from tapepath.cli.app import common_options
from tapepath.cli.bench import bench_cmd
from tapepath.cli.demo import demo_cmd
from tapepath.cli.devices import discover_cmd, status_cmd
from tapepath.cli.monitor import monitor_cmd
from tapepath.cli.robot import inventory_cmd, load_cmd, move_cmd, transfer_cmd, unload_cmd
from tapepath.cli.tape import position_cmd

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tapepath")
@common_options
def cli() -> None:
    """tapepath: SCSI multipath for tape libraries."""


for _cmd in (
    discover_cmd,
    status_cmd,
    inventory_cmd,
    move_cmd,
    load_cmd,
    unload_cmd,
    transfer_cmd,
    position_cmd,
    monitor_cmd,
    demo_cmd,
    bench_cmd,
):
    cli.add_command(_cmd)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tapepath`` console script; returns the exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="tapepath")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
