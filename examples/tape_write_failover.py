"""A tape written through two ports, one of them cut in the middle of the stream.

Run it as it is to use a VirtualLibrary (drive 0's port 0 goes down mid-stream), or
give it a drive's path URLs to write to a real drive (it writes over the tape!)::

    python examples/tape_write_failover.py
    python examples/tape_write_failover.py sg:///dev/sg3 sg:///dev/sg7
"""

from __future__ import annotations

import sys

import tapepath
from tapepath.testing import AtCommand, FaultPlan, LinkDown, VirtualClock, VirtualLibrary

RECORDS = [f"record {i:04d} ".encode() * 64 for i in range(40)]


def write_and_verify(urls: list[str]) -> list[str]:
    """Write the records and a filemark, rewind, read them back and compare.

    Returns:
        One line per step.

    Raises:
        RuntimeError: the tape does not read back as written.
    """
    with tapepath.open_drive(urls) as drive:
        drive.rewind()
        drive.set_block_size(0)
        for record in RECORDS:
            drive.write(record)
        drive.write_filemarks(1)
        end = drive.position()
        drive.rewind()
        back = []
        while chunk := drive.read(64 * 1024):
            back.append(chunk)
        if back != RECORDS:
            raise RuntimeError(f"read back {len(back)} records, wrote {len(RECORDS)}")
        states = ", ".join(f"{p.url} {p.state.value}" for p in drive.paths)
    return [
        f"wrote {len(RECORDS)} records and a filemark; end at block {end.block}, file {end.file}",
        f"read back {len(back)} records intact",
        f"paths: {states}",
    ]


def main(argv: list[str]) -> int:
    """Run on the given URLs, or on a VirtualLibrary whose drive port 0 dies mid-stream."""
    if argv:
        lines = write_and_verify(argv)
    else:
        with VirtualLibrary("example-tape", clock=VirtualClock()) as vlib:
            vlib.insert(vlib.drive_address(0), "EX0001L8")
            plan = FaultPlan()
            plan.add(LinkDown(device="drive0", port=0, trigger=AtCommand(20)))
            vlib.install(plan)
            lines = write_and_verify(vlib.drive_urls(0))
            lines.append(f"faults fired: {len(plan.fired)}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
