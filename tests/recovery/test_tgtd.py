"""Recovery decisions against a real target (tgtd): what its robot and drive can prove.

The path failure is handed to the hook directly (a cut connection is the campaign's
test); what is real here is every command recovery sends and every answer it reads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tapepath.errors import AmbiguousPositionError
from tapepath.multipath import MultipathDevice
from tapepath.multipath.hooks import Complete, Fail, FailedCommand, Resend
from tapepath.recovery import ChangerRecovery, TapeRecovery
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.tape import Rewind, Write6
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tapepath.transport.base import Outcome, Response

pytestmark = [pytest.mark.needs("tgtd", "tgtadm", "tgtimg"), pytest.mark.tgtd]

LOST = Response.failure(Outcome.LINK_LOST, "connection reset", maybe_executed=True)


@pytest.fixture
def lab() -> Iterator[tuple[TgtdInstance, VtlLayout, list[int]]]:
    """A private tgtd with a VTL behind two loopback portals."""
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=1, slots=4)
        second = tgt.add_portal()
        yield tgt, layout, [tgt.port, second]


def _device(tgt: TgtdInstance, lun: int, ports: list[int], hook: object) -> MultipathDevice:
    urls = [tgt.url(lun, port=p) for p in ports]
    dev = MultipathDevice(urls, recovery=hook, monitor=False, handler=None)  # type: ignore[arg-type]
    for _ in range(4):  # the unit attentions of the new nexus
        if dev.execute(bytes(6), timeout=10).ok:
            break
    return dev


class TestTgtd:
    """The robot proves a move either way; the drive's position proves nothing."""

    def test_unsent_write_on_a_new_session(
        self, lab: tuple[TgtdInstance, VtlLayout, list[int]]
    ) -> None:
        """A WRITE that never left, recovered on a session whose first answer is 29/00:
        tgtd cannot say whether the tape was rewound, so it is ambiguous, not resent."""
        tgt, layout, ports = lab
        changer = _device(tgt, layout.changer_lun, ports, ChangerRecovery())
        urls = [tgt.url(layout.drive_luns[0], port=p) for p in ports]
        hook = TapeRecovery()
        dev = MultipathDevice(urls, recovery=hook, monitor=False, handler=None)
        try:
            load = MoveMedium(
                layout.transport_address, layout.slot_addresses[0], layout.drive_addresses[0]
            )
            assert changer.execute(load.to_bytes(), timeout=30).ok
            for _ in range(4):
                if dev.execute(Rewind().to_bytes(), timeout=30).ok:
                    break
            cdb = Write6.for_data(b"never").to_bytes()
            never = Response.failure(Outcome.NO_CONNECT, "down", maybe_executed=False)
            failed = FailedCommand(cdb, b"never", 0, 30.0, dev.paths[0], never, 1)
            decision = hook.on_path_failure(dev, failed)
            assert isinstance(decision, Fail)
            assert isinstance(decision.error, AmbiguousPositionError)
            assert "never reached the drive" in str(decision.error)
        finally:
            dev.close()
            changer.close()

    def test_move_proved_both_ways(self, lab: tuple[TgtdInstance, VtlLayout, list[int]]) -> None:
        """Element status over iSCSI: not run -> resend, run -> complete."""
        tgt, layout, ports = lab
        hook = ChangerRecovery()
        dev = _device(tgt, layout.changer_lun, ports, hook)
        try:
            src, dst = layout.slot_addresses[0], layout.slot_addresses[3]
            cdb = MoveMedium(layout.transport_address, src, dst).to_bytes()
            failed = FailedCommand(cdb, b"", 0, 30.0, dev.paths[0], LOST, 1)
            assert isinstance(hook.on_path_failure(dev, failed), Resend)
            assert dev.execute(cdb, timeout=30).ok
            assert isinstance(hook.on_path_failure(dev, failed), Complete)
            assert hook.stats.resent == 1
            assert hook.stats.completed == 1
        finally:
            dev.close()

    def test_write_is_ambiguous(self, lab: tuple[TgtdInstance, VtlLayout, list[int]]) -> None:
        """tgtd's READ POSITION is a stub: a WRITE that may have run is ambiguous."""
        tgt, layout, ports = lab
        changer = _device(tgt, layout.changer_lun, ports, ChangerRecovery())
        hook = TapeRecovery()
        dev = _device(tgt, layout.drive_luns[0], ports, hook)
        try:
            load = MoveMedium(
                layout.transport_address, layout.slot_addresses[0], layout.drive_addresses[0]
            )
            assert changer.execute(load.to_bytes(), timeout=30).ok
            for _ in range(4):
                if dev.execute(Rewind().to_bytes(), timeout=30).ok:
                    break
            cdb = Write6.for_data(b"record").to_bytes()
            assert dev.execute(cdb, data_out=b"record", timeout=30).ok
            assert hook.position.known
            failed = FailedCommand(cdb, b"record", 0, 30.0, dev.paths[0], LOST, 1)
            decision = hook.on_path_failure(dev, failed)
            assert isinstance(decision, Fail)
            assert isinstance(decision.error, AmbiguousPositionError)
            assert "unknown" in decision.error.seen  # type: ignore[attr-defined]
            # a WRITE that never left: the new nexus's 29/00 was consumed above, so resent
            never = Response.failure(Outcome.NO_CONNECT, "down", maybe_executed=False)
            failed = FailedCommand(cdb, b"record", 0, 30.0, dev.paths[0], never, 1)
            assert isinstance(hook.on_path_failure(dev, failed), Resend)
        finally:
            dev.close()
            changer.close()
