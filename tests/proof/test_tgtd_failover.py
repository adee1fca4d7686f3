"""Failover over a real iSCSI target: tgtd's VTL through two portals, a path cut mid-command.

Path 0 of each device goes through a :class:`HoldingProxy` to tgtd's first portal, path 1
straight to the second. The cut is ``tgtadm --mode conn --op delete`` of path 0's
connection while a MOVE MEDIUM or a WRITE is outstanding on it, either after tgtd ran it
(its answer held in the relay) or before (the command held).

What happens (and docs/failover.md says so): the move is done exactly once in both cases
(recovery reads the element status on path 1: done, completed; not done, resent); a
WRITE always ends in AmbiguousPositionError naming the last good block, because tgtd's
READ POSITION reports the position as unknown, and the tape then holds the in-doubt
record once or not at all, never twice.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

import tapepath
from tapepath.errors import AmbiguousPositionError
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tests.proof.holding_proxy import HoldingProxy
from tests.proof.tgtd_cut import cut_during
from tests.tgtd.conftest import tgtd_vtl

__all__ = ["tgtd_vtl"]

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.timeout(120)]

Vtl = tuple[TgtdInstance, VtlLayout]
RECORDS = [f"tgtd proof record {i:02d} ".encode() * (40 + i) for i in range(8)]
"""Records under 8 KiB: each WRITE goes as immediate data in one PDU, so holding the
answers cannot stall it at an R2T (tgtd runs it before answering)."""


@pytest.fixture
def proxy(tgtd_vtl: Vtl) -> Iterator[HoldingProxy]:
    """A relay in front of tgtd's first portal."""
    tgt, _ = tgtd_vtl
    with HoldingProxy(tgt.portals[0]) as p:
        yield p


def _urls(tgt: TgtdInstance, proxy: HoldingProxy, lun: int) -> list[str]:
    return [tgt.url(lun, port=proxy.port), tgt.url(lun, port=tgt.portals[1])]


def _triggers(logs: list[structlog.typing.EventDict]) -> list[str]:
    return [e["trigger"] for e in logs if e.get("event") == "recovery_transition"]


def _read_to_end_of_data(drive: tapepath.TapeDrive, longest: int) -> list[bytes]:
    """Every record up to end of data (tgtd answers BLANK CHECK there)."""
    back: list[bytes] = []
    for _ in range(len(RECORDS) + 2):
        try:
            back.append(drive.read(max(64 * 1024, longest)))
        except tapepath.EndOfDataError:
            return back
    raise AssertionError(f"no end of data after {len(back)} records")


class TestMoveMediumCut:
    """A MOVE MEDIUM whose path is cut: done once, whether tgtd ran it or not."""

    @pytest.mark.parametrize("ran", [True, False], ids=["after-tgtd-ran-it", "before-tgtd-saw-it"])
    def test_the_move_happens_once(self, tgtd_vtl: Vtl, proxy: HoldingProxy, ran: bool) -> None:
        """The cartridge ends in the drive, its slot empty; resent only when not done."""
        tgt, layout = tgtd_vtl
        urls = _urls(tgt, proxy, layout.changer_lun)
        with tapepath.open_library(urls, monitor=False) as lib:
            before = lib.inventory()
            assert before.slot(1).barcode == layout.barcodes[0]
            assert not before.drive(0).full
            with structlog.testing.capture_logs() as logs:
                _, error = cut_during(
                    tgt, layout.tid, proxy, lib.paths[0], lambda: lib.load(1, 0), ran=ran
                )
            assert error is None, repr(error)
            after = lib.inventory()
            assert after.drive(0).barcode == layout.barcodes[0]
            assert after.drive(0).source == layout.slot_addresses[0]
            assert not after.slot(1).full
            held = sorted(str(e.barcode) for e in (*after.slots, *after.drives) if e.full)
            assert held == sorted(layout.barcodes), "a cartridge vanished or appeared"
            steps = _triggers(logs)
            assert steps[0] == "path_failed"
            # proof of the effect, not a blind resend: done -> completed, else resent
            assert ("effect_present" in steps) is ran
            assert ("resent" in steps) is not ran
            assert lib.paths[0].state.value == "failed"

    def test_the_library_goes_on_over_the_other_portal(
        self, tgtd_vtl: Vtl, proxy: HoldingProxy
    ) -> None:
        """After the cut, unload and transfer work (over path 1)."""
        tgt, layout = tgtd_vtl
        with tapepath.open_library(_urls(tgt, proxy, layout.changer_lun), monitor=False) as lib:
            _, error = cut_during(
                tgt, layout.tid, proxy, lib.paths[0], lambda: lib.load(1, 0), ran=True
            )
            assert error is None
            assert lib.unload(0) == 1
            last = len(layout.slot_addresses)
            lib.transfer(1, last)
            inv = lib.inventory()
            assert inv.slot(last).barcode == layout.barcodes[0]
            assert not inv.slot(1).full


class TestWriteStreamCut:
    """A WRITE whose path is cut: tgtd cannot say where the tape is, so it is ambiguous."""

    def _write_with_cut(
        self,
        tgt: TgtdInstance,
        layout: VtlLayout,
        proxy: HoldingProxy,
        *,
        ran: bool,
        records: list[bytes] = RECORDS,
    ) -> tuple[BaseException | None, list[bytes], tapepath.TapePosition]:
        with tapepath.open_library([tgt.url(layout.changer_lun)], monitor=False) as lib:
            lib.load(1, 0)
        urls = _urls(tgt, proxy, layout.drive_luns[0])
        with tapepath.open_drive(urls, monitor=False) as drive:
            drive.rewind()
            for record in records[:4]:
                drive.write(record)
            _, error = cut_during(
                tgt, layout.tid, proxy, drive.paths[0], lambda: drive.write(records[4]), ran=ran
            )
            where = drive.position()
            drive.rewind()
            back = _read_to_end_of_data(drive, max(len(r) for r in records))
        return error, back, where

    @pytest.mark.parametrize("ran", [True, False], ids=["after-tgtd-ran-it", "before-tgtd-saw-it"])
    def test_ambiguous_and_never_twice(self, tgtd_vtl: Vtl, proxy: HoldingProxy, ran: bool) -> None:
        """AmbiguousPositionError names block 4; the tape holds record 4 once or not at all."""
        tgt, layout = tgtd_vtl
        error, back, _ = self._write_with_cut(tgt, layout, proxy, ran=ran)
        assert isinstance(error, AmbiguousPositionError), repr(error)
        assert "block 4" in str(error)
        assert "unknown" in str(error)
        assert back == RECORDS[: 5 if ran else 4]

    def test_a_large_write_cut_in_mid_transfer(self, tgtd_vtl: Vtl, proxy: HoldingProxy) -> None:
        """A 256 KiB WRITE cut while it waits for tgtd's R2T: ambiguous, and not on tape."""
        tgt, layout = tgtd_vtl
        large = [bytes([65 + i]) * (256 * 1024) for i in range(5)]
        # holding the answers holds the R2T: the data after the first burst never goes
        error, back, _ = self._write_with_cut(tgt, layout, proxy, ran=True, records=large)
        assert isinstance(error, AmbiguousPositionError), repr(error)
        assert "block 4" in str(error)
        assert back == large[:4]

    def test_position_is_unknown_after_the_ambiguity(
        self, tgtd_vtl: Vtl, proxy: HoldingProxy
    ) -> None:
        """position() must not claim block 4 when the in-doubt WRITE did move the tape to 5."""
        tgt, layout = tgtd_vtl
        error, back, where = self._write_with_cut(tgt, layout, proxy, ran=True)
        assert isinstance(error, AmbiguousPositionError)
        assert len(back) == 5  # the tape really is past record 4
        assert where.block is None, f"position() claims {where}"
