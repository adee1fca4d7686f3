"""``tapepath discover`` and ``tapepath status``: devices and their paths.

``status`` prints the topology in the manner of ``multipath -ll``: for each device its
name, designator, INQUIRY identity and type, then each path with its state, role
(``active`` is the path serving commands now; ``passive`` a standby control path;
``standby`` another usable path), priority, port group and error count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.output import device_dict, emit_json, topology_text
from tapepath.errors import DecodeError, TapepathError
from tapepath.multipath.device import MultipathDevice
from tapepath.multipath.discovery import discover, open_device
from tapepath.scsi.inquiry import Inquiry

__all__ = ["discover_cmd", "identity", "status_cmd"]

_INQ = 96


def identity(dev: MultipathDevice) -> dict[str, str]:
    """Vendor, product and revision from a standard INQUIRY through the device ({} if
    it does not answer)."""
    try:
        r = dev.execute(Inquiry(allocation_length=_INQ).to_bytes(), data_in_len=_INQ, timeout=10)
    except (TapepathError, DecodeError, OSError):
        return {}
    if not r.ok or len(r.data) < 36:
        return {}
    raw = bytes(r.data)

    def text(a: int, b: int) -> str:
        return raw[a:b].decode("ascii", "replace").strip()

    return {"vendor": text(8, 16), "product": text(16, 32), "revision": text(32, 36)}


def _show(devices: Sequence[MultipathDevice], *, title: str) -> None:
    st = state()
    docs: list[dict[str, Any]] = [device_dict(d, identity(d)) for d in devices]
    if st.json:
        emit_json({"devices": docs})
        return
    if not docs:
        click.echo(f"no {title} found")
        return
    click.echo(topology_text(docs))


@click.command("discover")
@click.argument("sources", nargs=-1)
@common_options
@run_command
def discover_cmd(sources: tuple[str, ...]) -> None:
    """Find the devices behind SOURCES and group their paths.

    SOURCES are path URLs, sim://NAME, "sg" (the local SCSI generic nodes) or iSCSI
    portals (iscsi://HOST[:PORT]). Without any, the -d device's paths are used.
    """
    st = state()
    spec = st.device_spec(required=not sources)
    found: list[str] = list(sources)
    if spec is not None:
        found += spec if isinstance(spec, list) else list(st.config().device(spec).paths)
    devices = discover(found, monitor=False)
    try:
        _show(devices, title="devices")
    finally:
        for d in devices:
            d.close()


@click.command("status")
@common_options
@run_command
def status_cmd() -> None:
    """Show each device, its identity and every path (like multipath -ll).

    With -d, that device; without, every device of the configuration file.
    """
    st = state()
    spec = st.device_spec(required=False)
    specs: list[str | list[str]] = []
    if spec is not None:
        specs.append(spec)
    else:
        specs.extend(st.config().devices)
    if not specs:
        raise click.UsageError("no device: give -d, or name devices in the configuration")
    devices: list[MultipathDevice] = []
    try:
        for s in specs:
            devices.append(open_device(s, config=st.config(), monitor=False))
        _show(devices, title="devices")
    finally:
        for d in devices:
            d.close()
