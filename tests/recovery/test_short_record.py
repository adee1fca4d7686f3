"""A variable READ whose data came back cut (tgtd swaps the residual and the data
length of a record shorter than the allocation): TapeDrive.read must return the whole
record or raise, never the cut bytes.

The swap is reproduced over the VirtualLibrary by a transport wrapper, so the test runs
without tgtd (tests/reliability/test_findings.py::TestTgtdShortRecordRead is the tgtd
original), and through a multipath device with its recovery hook in place.
"""

from __future__ import annotations

from typing import Any

import tapepath
from tapepath.errors import TapepathError
from tapepath.testing import VirtualClock, VirtualLibrary
from tapepath.transport.base import Response


class _SwapsResidual:
    """Cuts the data of an ILI READ to INFORMATION bytes, as tgtd 1.0.85 does when the
    record is longer than half the allocation."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.cut = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def execute(self, cdb: bytes, **kw: Any) -> Response:
        r: Response = self._inner.execute(cdb, **kw)
        sense = r.sense
        if cdb[0] == 0x08 and r.status == 2 and len(sense) > 7 and sense[2] & 0x20:
            info = int.from_bytes(sense[3:7], "big", signed=True)
            if 0 <= info < len(r.data):
                self.cut += 1
                data = r.data[:info]
                return Response(
                    status=r.status,
                    data=data,
                    sense=sense,
                    residual=kw.get("data_in_len", 0) - info,
                    transferred=len(data),
                )
        return r


class TestCutRecord:
    """The record comes back whole, or the read raises."""

    def test_record_over_half_the_allocation(self) -> None:
        """A 2052-byte record read with read(4096) is whole or raises, never cut."""
        record = bytes(range(256)) * 8 + b"tail"
        with VirtualLibrary("short-record", clock=VirtualClock()) as vlib:
            vlib.insert(vlib.drive_address(0), "SR0001L8")
            with tapepath.open_drive(vlib.drive_urls(0), monitor=False, timeout=5) as d:
                swaps = [_SwapsResidual(p.transport) for p in d.device.paths]
                for p, s in zip(d.device.paths, swaps, strict=True):
                    p.transport = s
                    p.send = s.execute  # the fast path's bound method
                d.rewind()
                d.write(record)
                d.write(b"next")
                d.rewind()
                try:
                    got: bytes | None = d.read(4096)
                except TapepathError:
                    got = None
                assert sum(s.cut for s in swaps) >= 1  # the swap really happened
                assert got == record
                assert d.read(4096) == b"next"  # and the tape is after the record
