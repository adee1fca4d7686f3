"""The robot commands: ``inventory``, ``move``, ``load``, ``unload``, ``transfer``.

Numbers are mtx numbers (slots from 1 with import/export elements after them, drives
from 0); ``move`` takes element addresses (decimal or 0x hex) or barcodes.
"""

from __future__ import annotations

import time
from typing import Any

import click

from tapepath.api import open_library
from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.output import console, element_dict, emit_json, inventory_dict, inventory_tables
from tapepath.library import Library

__all__ = ["inventory_cmd", "load_cmd", "move_cmd", "transfer_cmd", "unload_cmd"]


def open_changer() -> Library:
    """The -d device as a :class:`Library` (no background monitor: one-shot commands)."""
    st = state()
    spec = st.device_spec()
    assert spec is not None
    cfg = st.config() if isinstance(spec, str) else None
    return open_library(spec, config=cfg, monitor=False)


def _done(doc: dict[str, Any], text: str) -> None:
    if state().json:
        emit_json({"ok": True, **doc})
    else:
        click.echo(text)


def _ref(text: str) -> int | str:
    """An element address (decimal or 0x hex) or a barcode."""
    t = text.strip()
    try:
        return int(t, 0)
    except ValueError:
        return t


@click.command("inventory")
@click.option(
    "--initialize",
    is_flag=True,
    help="Make the changer scan every element first (INITIALIZE ELEMENT STATUS).",
)
@common_options
@run_command
def inventory_cmd(initialize: bool) -> None:
    """List drives and slots with their barcodes."""
    st = state()
    with open_changer() as lib:
        seconds = None
        if initialize:
            began = time.monotonic()
            if st.json:
                lib.initialize()
            else:
                with console(stderr=True).status(
                    "INITIALIZE ELEMENT STATUS: the changer is scanning every element..."
                ):
                    lib.initialize()
            seconds = round(time.monotonic() - began, 3)
        inv = lib.inventory()
    if st.json:
        emit_json({"inventory": inventory_dict(inv), "initialize_seconds": seconds})
        return
    out = console()
    if seconds is not None:
        out.print(f"initialized in {seconds:.1f} s")
    for table in inventory_tables(inv):
        out.print(table)


@click.command("move")
@click.argument("source")
@click.argument("destination")
@click.option("--invert", is_flag=True, help="Turn the cartridge over (two-sided media).")
@common_options
@run_command
def move_cmd(source: str, destination: str, invert: bool) -> None:
    """Move a cartridge between element addresses (or from the element holding a barcode)."""
    src, dst = _ref(source), _ref(destination)
    with open_changer() as lib:
        lib.move(src, dst, invert=invert)
    _done(
        {"operation": "move", "source": src, "destination": dst},
        f"moved {source} -> {destination}",
    )


@click.command("load")
@click.argument("slot", type=int)
@click.argument("drive", type=int, default=0)
@common_options
@run_command
def load_cmd(slot: int, drive: int) -> None:
    """Load the cartridge of SLOT (from 1) into DRIVE (from 0, default 0)."""
    with open_changer() as lib:
        lib.load(slot, drive)
        barcode = lib.inventory().drive(drive).barcode
    _done(
        {"operation": "load", "slot": slot, "drive": drive, "barcode": barcode},
        f"loaded slot {slot} ({barcode or 'no barcode'}) into drive {drive}",
    )


@click.command("unload")
@click.argument("drive", type=int, default=0)
@click.option("--slot", type=int, default=None, help="The slot (default: where it came from).")
@common_options
@run_command
def unload_cmd(drive: int, slot: int | None) -> None:
    """Put the cartridge of DRIVE back in a slot."""
    with open_changer() as lib:
        went = lib.unload(drive, slot)
        element = lib.inventory().slot(went)
    _done(
        {"operation": "unload", "drive": drive, "slot": went, "element": element_dict(element)},
        f"unloaded drive {drive} into slot {went}",
    )


@click.command("transfer")
@click.argument("source_slot", type=int)
@click.argument("destination_slot", type=int)
@common_options
@run_command
def transfer_cmd(source_slot: int, destination_slot: int) -> None:
    """Move a cartridge from one slot to another (mtx numbers)."""
    with open_changer() as lib:
        lib.transfer(source_slot, destination_slot)
    _done(
        {"operation": "transfer", "source": source_slot, "destination": destination_slot},
        f"transferred slot {source_slot} -> slot {destination_slot}",
    )
