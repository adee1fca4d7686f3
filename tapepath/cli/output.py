"""Output of the ``tapepath`` command: rich tables for people, JSON for scripts.

JSON documents are written with sorted keys; their fields are listed in docs/cli.md
and stay stable. Path URLs pass through :func:`~tapepath.multipath.redact.redact_url`
before they are shown in either form, so secrets never appear.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from tapepath.inventory import Element, Inventory
from tapepath.multipath.device import MultipathDevice
from tapepath.multipath.path import Path, PathState
from tapepath.multipath.redact import redact_url

__all__ = [
    "console",
    "device_dict",
    "element_dict",
    "emit_json",
    "inventory_dict",
    "inventory_tables",
    "path_dict",
    "topology_text",
    "type_name",
]

_TYPES = {0: "disk", 1: "tape", 3: "processor", 5: "cd-rom", 8: "changer", 12: "controller"}


def type_name(device_type: int | None) -> str:
    """A device type's name: ``changer``, ``tape``, ... ``typeN`` for others, or
    ``unknown`` when the device did not say."""
    if device_type is None:
        return "unknown"
    return _TYPES.get(device_type, f"type{device_type}")


def console(*, stderr: bool = False) -> Console:
    """A rich console on the current stdout (or stderr), looked up now."""
    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


def emit_json(doc: Any) -> None:
    """Write one JSON document (sorted keys) and a newline to stdout."""
    sys.stdout.write(json.dumps(doc, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def element_dict(e: Element) -> dict[str, Any]:
    """The JSON form of an inventory element."""
    return {
        "kind": e.kind.value,
        "number": e.ordinal,
        "address": e.address,
        "full": e.full,
        "barcode": e.barcode,
        "source": e.source,
        "serial": e.serial,
        "accessible": e.accessible,
        "exception": e.exception,
    }


def inventory_dict(inv: Inventory) -> dict[str, Any]:
    """The JSON form of an inventory: one list per element kind."""
    return {
        "transports": [element_dict(e) for e in inv.transports],
        "drives": [element_dict(e) for e in inv.drives],
        "slots": [element_dict(e) for e in inv.slots],
        "import_export": [element_dict(e) for e in inv.import_export],
    }


def _role(path: Path, current: Path | None) -> str:
    if path is current:
        return "active"
    if path.state is PathState.PASSIVE:
        return "passive"
    if path.state is PathState.ACTIVE:
        return "standby"
    return "-"


def path_dict(path: Path, current: Path | None = None) -> dict[str, Any]:
    """The JSON form of one path: URL (secrets removed), state, role and counters."""
    stats = path.stats
    return {
        "url": redact_url(path.url),
        "state": path.state.value,
        "role": _role(path, current),
        "priority": path.priority,
        "port_group": path.identity.port_group,
        "relative_port": path.identity.relative_port,
        "commands": stats.commands,
        "errors": stats.errors,
        "last_error": redact_url(stats.last_error) if stats.last_error else None,
    }


def device_dict(dev: MultipathDevice, identity: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON form of a device: name, type, identity and paths."""
    current = dev.current_path
    ident = identity or {}
    return {
        "name": redact_url(dev.name),
        "type": type_name(dev.device_type),
        "designator": dev.designator,
        "vendor": ident.get("vendor"),
        "product": ident.get("product"),
        "revision": ident.get("revision"),
        "paths": [path_dict(p, current) for p in dev.paths],
    }


def topology_text(devices: Sequence[dict[str, Any]]) -> str:
    """The ``multipath -ll``-like view of devices in JSON form.

    One header per device (name, designator, vendor/product, type), then one line per
    path: ``|- url  state role prio=N errors=N``.
    """
    lines: list[str] = []
    for d in devices:
        who = " ".join(x for x in (d.get("vendor"), d.get("product"), d.get("revision")) if x)
        lines.append(f"{d['name']} ({d.get('designator') or 'no designator'}) {who}".rstrip())
        lines.append(f"type={d['type']} paths={len(d['paths'])}")
        for i, p in enumerate(d["paths"]):
            branch = "`-" if i == len(d["paths"]) - 1 else "|-"
            group = f" group={p['port_group']}" if p.get("port_group") is not None else ""
            lines.append(
                f"{branch} {p['url']} {p['state']} {p['role']} prio={p['priority']}"
                f"{group} errors={p['errors']} commands={p['commands']}"
            )
    return "\n".join(lines)


def inventory_tables(inv: Inventory) -> list[Table]:
    """Rich tables of an inventory: drives, then slots (import/export included)."""
    drives = Table(title="Drives", show_lines=False)
    for col in ("drive", "address", "state", "barcode", "from slot", "serial"):
        drives.add_column(col)
    for e in inv.drives:
        src = ""
        if e.source is not None:
            try:
                src = str(inv.element(e.source).ordinal)
            except LookupError:
                src = f"{e.source:#x}"
        drives.add_row(
            str(e.ordinal),
            f"{e.address:#x}",
            "full" if e.full else "empty",
            e.barcode or "",
            src,
            e.serial or "",
        )
    slots = Table(title="Slots")
    for col in ("slot", "address", "kind", "state", "barcode"):
        slots.add_column(col)
    for e in inv.storage:
        slots.add_row(
            str(e.ordinal),
            f"{e.address:#x}",
            "import/export" if e.kind.value == "import_export" else "storage",
            "full" if e.full else "empty",
            e.barcode or "",
        )
    return [drives, slots]
