"""The application API over a real iSCSI target: tgtd's virtual tape library, two portals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tapepath
from tapepath.errors import AmbiguousPositionError, ElementFullError
from tapepath.inventory import ElementKind
from tapepath.scsi.element_status import ReadElementStatus
from tapepath.scsi.sense import SenseKey, fixed_sense
from tapepath.testing import MockTransport, Request
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tapepath.transport.base import Response
from tests.tgtd.conftest import tgtd_vtl

__all__ = ["tgtd_vtl"]

pytestmark = pytest.mark.needs("tgtd", "tgtadm", "tgtimg")

Vtl = tuple[TgtdInstance, VtlLayout]


def _urls(tgt: TgtdInstance, lun: int) -> list[str]:
    return [tgt.url(lun, port=p) for p in tgt.portals]


@pytest.fixture
def tgt_library(tgtd_vtl: Vtl) -> Iterator[tapepath.Library]:
    """The tgtd changer through both portals."""
    tgt, layout = tgtd_vtl
    with tapepath.open_library(_urls(tgt, layout.changer_lun), monitor=False) as lib:
        yield lib


class TestTgtdLibrary:
    """Inventory and moves against tgtd's changer (one type per READ ELEMENT STATUS)."""

    def test_inventory_matches_the_layout(
        self, tgtd_vtl: Vtl, tgt_library: tapepath.Library
    ) -> None:
        """Addresses, mtx numbers and barcodes are those tgtd was configured with."""
        _, layout = tgtd_vtl
        inv = tgt_library.inventory()
        assert [e.address for e in inv.drives] == list(layout.drive_addresses)
        assert [e.address for e in inv.slots] == list(layout.slot_addresses)
        assert [e.address for e in inv.import_export] == list(layout.import_export_addresses)
        assert [e.address for e in inv.transports] == [layout.transport_address]
        assert [e.ordinal for e in inv.import_export] == [len(layout.slot_addresses) + 1]
        held = {e.address: e.barcode for e in inv.slots if e.full}
        assert held == dict(zip(layout.slot_addresses, layout.barcodes, strict=False))

    def test_load_unload_and_errors(self, tgtd_vtl: Vtl, tgt_library: tapepath.Library) -> None:
        """load/unload in mtx numbers; a full drive refuses with ElementFullError."""
        _, layout = tgtd_vtl
        tgt_library.load(2, 0)
        d = tgt_library.inventory().drive(0)
        assert d.barcode == layout.barcodes[1]
        assert d.source == layout.slot_addresses[1]
        with pytest.raises(ElementFullError):
            tgt_library.load(3, 0)
        assert tgt_library.unload(0) == 2
        assert tgt_library.inventory().slot(2).barcode == layout.barcodes[1]

    def test_drive_serial_maps_to_its_element(
        self, tgtd_vtl: Vtl, tgt_library: tapepath.Library
    ) -> None:
        """The drive's VPD serial finds its element through DVCID (vendor+product+serial)."""
        tgt, layout = tgtd_vtl
        with tapepath.open_drive(_urls(tgt, layout.drive_luns[0]), monitor=False) as drive:
            serial = drive.serial
        assert serial
        assert tgt_library.drive_for(serial).address == layout.drive_addresses[0]


class TestTgtdDrive:
    """Data through tgtd's tape drive; its position comes from the library's tracking."""

    def test_round_trip_and_tracked_position(
        self, tgtd_vtl: Vtl, tgt_library: tapepath.Library
    ) -> None:
        """Records and a filemark read back; position() is the tracked one (tgtd cannot say)."""
        tgt, layout = tgtd_vtl
        tgt_library.load(1, 0)
        with tapepath.open_drive(_urls(tgt, layout.drive_luns[0]), monitor=False) as drive:
            drive.rewind()
            records = [f"tgtd record {i}".encode() * 20 for i in range(6)]
            for r in records:
                drive.write(r)
            drive.write_filemarks(1)
            p = drive.position()
            assert (p.block, p.file, p.source) == (7, 1, "tracked")
            drive.rewind()
            assert [drive.read(4096) for _ in records] == records
            assert drive.read(4096) == b""

    def test_cut_between_writes_is_ambiguous(
        self, tgtd_vtl: Vtl, tgt_library: tapepath.Library
    ) -> None:
        """After a cut tgtd reports 29/00 and cannot locate: the next write raises, not guesses."""
        tgt, layout = tgtd_vtl
        tgt_library.load(1, 0)
        with tapepath.open_drive(_urls(tgt, layout.drive_luns[0]), monitor=False) as drive:
            drive.rewind()
            for i in range(3):
                drive.write(b"before %d" % i)
            for c in tgt.connections(layout.tid):
                tgt.delete_connection(c.tid, c.sid, c.cid)
            with pytest.raises(AmbiguousPositionError, match="block 3"):
                drive.write(b"after")
            drive.rewind()
            assert [drive.read(100) for _ in range(3)] == [b"before %d" % i for i in range(3)]
            with pytest.raises(tapepath.EndOfDataError):
                drive.read(100)


def _refusing_voltag(url: str) -> MockTransport:
    """tgtd's changer behind a shim that refuses READ ELEMENT STATUS with VOLTAG (24/00),
    as some changers do, so the library falls back to reading without it."""
    real = tapepath.open_transport(url)

    def handle(req: Request) -> Response:
        if req.cdb[0] == 0xB8 and ReadElementStatus.from_bytes(req.cdb).voltag:
            return Response(status=2, sense=fixed_sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0))
        return real.execute(
            req.cdb, data_out=req.data_out, data_in_len=req.data_in_len, timeout=req.timeout
        )

    mock = MockTransport(handle, url="mock://tgtd-no-voltag")
    mock.real = real  # type: ignore[attr-defined]
    return mock


class TestTgtdWithoutVoltag:
    """tgtd cuts the last descriptor of each type to 8 bytes without VOLTAG: none is lost."""

    def test_descriptors(self, tgtd_vtl: Vtl, tgt_library: tapepath.Library) -> None:
        """descriptors(kind, voltag=False) gives every element of each type."""
        _, layout = tgtd_vtl
        tgt_library.load(1, 0)
        got = {
            kind: tgt_library.descriptors(kind, voltag=False)
            for kind in (
                ElementKind.TRANSPORT,
                ElementKind.SLOT,
                ElementKind.IMPORT_EXPORT,
                ElementKind.DRIVE,
            )
        }
        assert [d.address for d in got[ElementKind.TRANSPORT]] == [layout.transport_address]
        assert [d.address for d in got[ElementKind.SLOT]] == list(layout.slot_addresses)
        assert [d.address for d in got[ElementKind.IMPORT_EXPORT]] == list(
            layout.import_export_addresses
        )
        assert [d.address for d in got[ElementKind.DRIVE]] == list(layout.drive_addresses)
        assert got[ElementKind.SLOT][-1].partial
        assert all(d.barcode is None for d in got[ElementKind.SLOT])
        full = {d.address for d in got[ElementKind.SLOT] if d.full}
        assert full == set(layout.slot_addresses[1 : len(layout.barcodes)])
        assert got[ElementKind.DRIVE][0].full

    def test_inventory_after_the_voltag_fallback(self, tgtd_vtl: Vtl) -> None:
        """inventory() over a changer refusing VOLTAG still has the last slot, the
        import/export element and the transport."""
        tgt, layout = tgtd_vtl
        mock = _refusing_voltag(tgt.url(layout.changer_lun))
        try:
            inv = tapepath.Library(mock).inventory()
        finally:
            mock.real.close()  # type: ignore[attr-defined]
        assert [e.address for e in inv.slots] == list(layout.slot_addresses)
        assert [e.address for e in inv.import_export] == list(layout.import_export_addresses)
        assert [e.address for e in inv.transports] == [layout.transport_address]
        assert [e.address for e in inv.drives] == list(layout.drive_addresses)
        assert [e.full for e in inv.slots] == [
            i < len(layout.barcodes) for i in range(len(layout.slot_addresses))
        ]


class TestTgtdShortRecordRead:
    """tgtd sends (allocation - record) bytes of a record shorter than the allocation:
    such a record is read again, whole."""

    def test_records_over_half_the_allocation(
        self, tgtd_vtl: Vtl, tgt_library: tapepath.Library
    ) -> None:
        """2052-, 3000- and 100-byte records read back whole with read(4096) and readinto."""
        tgt, layout = tgtd_vtl
        tgt_library.load(1, 0)
        records = [bytes(range(256)) * 8 + b"tail", b"x" * 3000, b"short" * 20]
        with tapepath.open_drive(_urls(tgt, layout.drive_luns[0]), monitor=False) as drive:
            drive.rewind()
            for r in records:
                drive.write(r)
            drive.write_filemarks(1)
            drive.rewind()
            assert [drive.read(4096) for _ in records] == records
            assert drive.read(4096) == b""
            drive.rewind()
            buf = bytearray(4096)
            assert drive.readinto(buf) == len(records[0])
            assert bytes(buf[: len(records[0])]) == records[0]
            assert drive.read(4096) == records[1]
            assert drive.position().block == 2
