"""``tapepath position``: where a drive's tape is, and moving it (rewind, locate)."""

from __future__ import annotations

import click

from tapepath.api import open_drive
from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.output import emit_json

__all__ = ["position_cmd"]


@click.command("position")
@click.option("--rewind", is_flag=True, help="Rewind first.")
@click.option("--locate", type=int, default=None, metavar="BLOCK", help="Locate to BLOCK first.")
@common_options
@run_command
def position_cmd(rewind: bool, locate: int | None) -> None:
    """Show the tape position of the -d drive (optionally after a rewind or a locate)."""
    st = state()
    spec = st.device_spec()
    assert spec is not None
    cfg = st.config() if isinstance(spec, str) else None
    with open_drive(spec, config=cfg, monitor=False) as drive:
        if rewind:
            drive.rewind()
        if locate is not None:
            drive.locate(locate)
        pos = drive.position()
    doc = {
        "block": pos.block,
        "file": pos.file,
        "partition": pos.partition,
        "bop": pos.bop,
        "eop": pos.eop,
        "source": pos.source,
    }
    if st.json:
        emit_json({"position": doc})
        return
    block = "unknown" if pos.block is None else str(pos.block)
    file_ = "unknown" if pos.file is None else str(pos.file)
    flags = " ".join(n for n, v in (("BOP", pos.bop), ("EOP", pos.eop)) if v)
    click.echo(
        f"block {block} file {file_} partition {pos.partition} ({pos.source}) {flags}".rstrip()
    )
