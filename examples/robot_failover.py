"""Robot moves that carry on when the active control path is lost.

Run it as it is to use a VirtualLibrary (its control path 0 is cut after a few
commands), or give it the changer's path URLs to drive a real library::

    python examples/robot_failover.py
    python examples/robot_failover.py iscsi://10.0.0.5/iqn.2026-11.example:vtl/0 \
        iscsi://10.0.0.6/iqn.2026-11.example:vtl/0
"""

from __future__ import annotations

import sys

import tapepath
from tapepath.testing import AtCommand, FaultPlan, LinkDown, VirtualClock, VirtualLibrary


def shuffle(urls: list[str]) -> list[str]:
    """Load the first full slot into drive 0, unload it, and move it to the last slot.

    Returns:
        One line per step, for the caller to print.
    """
    lines = []
    with tapepath.open_library(urls) as lib:
        inv = lib.inventory()
        lines.append(
            f"{len(inv.drives)} drives, {len(inv.slots)} slots, "
            f"{len(inv.import_export)} import/export"
        )
        first = next(e for e in inv.slots if e.full)
        lib.load(first.ordinal, 0)
        lines.append(f"loaded {first.barcode} from slot {first.ordinal} into drive 0")
        back = lib.unload(0)
        lines.append(f"unloaded drive 0 into slot {back}")
        last = inv.slots[-1]
        if not lib.inventory().slot(last.ordinal).full:
            lib.transfer(back, last.ordinal)
            lines.append(f"transferred slot {back} to slot {last.ordinal}")
        lines.append("paths: " + ", ".join(f"{p.url} {p.state.value}" for p in lib.paths))
    return lines


def main(argv: list[str]) -> int:
    """Run on the given URLs, or on a VirtualLibrary whose active control path dies."""
    if argv:
        lines = shuffle(argv)
    else:
        with VirtualLibrary("example-robot", clock=VirtualClock()) as vlib:
            plan = FaultPlan()
            plan.add(LinkDown(device="changer", port=0, trigger=AtCommand(8)))
            vlib.install(plan)
            lines = shuffle(vlib.changer_urls())
            lines.append(
                f"faults fired: {len(plan.fired)}; active control path now "
                f"{vlib.active_control_path()}"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
