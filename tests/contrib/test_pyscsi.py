"""pyscsi's commands through tapepath.contrib.pyscsi."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pyscsi.pyscsi.scsi import SCSI
from pyscsi.pyscsi.scsi_sense import SCSICheckCondition

from tapepath.contrib.pyscsi import BusyStatus, PathFailure, PyscsiDevice, ReservationConflict
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.element_status import (
    ElementDescriptor,
    ElementStatus,
    ElementStatusPage,
    ElementType,
    ReadElementStatus,
    VolumeTag,
)
from tapepath.scsi.inquiry import PeripheralDeviceType, StandardInquiry
from tapepath.scsi.sense import fixed_sense
from tapepath.testing.mock import MockTransport, Request
from tapepath.transport.base import Outcome, Response, Status

TRANSPORT, SLOTS, DRIVE = 1, (1000, 1001, 1002), 500


class FakeChanger:
    """A small medium changer answering through a MockTransport with tapepath's encoders."""

    def __init__(self) -> None:
        self.slots: dict[int, str | None] = {1000: "A00001L8", 1001: None, 1002: "A00003L8"}
        self.drive: str | None = None
        self.status_override: int | None = None
        self.lock = threading.Lock()

    def _element_status(self, cmd: ReadElementStatus) -> bytes:
        def desc(addr: int, tag: str | None) -> ElementDescriptor:
            vt = (
                (VolumeTag.from_text(tag) if tag else VolumeTag.from_text(""))
                if cmd.voltag
                else None
            )
            return ElementDescriptor(addr, full=tag is not None, access=True, primary_tag=vt)

        pages = [
            ElementStatusPage(ElementType.MEDIUM_TRANSPORT, (desc(TRANSPORT, None),), cmd.voltag),
            ElementStatusPage(
                ElementType.STORAGE, tuple(desc(a, t) for a, t in self.slots.items()), cmd.voltag
            ),
            ElementStatusPage(ElementType.DATA_TRANSFER, (desc(DRIVE, self.drive),), cmd.voltag),
        ]
        if cmd.element_type:
            pages = [p for p in pages if p.element_type == cmd.element_type]
        count = sum(len(p.descriptors) for p in pages)
        return ElementStatus(TRANSPORT, count, tuple(pages)).to_bytes()

    def _move(self, cmd: MoveMedium) -> Response:
        places: dict[int, str | None] = {**self.slots, DRIVE: self.drive}
        if cmd.source not in places or cmd.destination not in places:
            return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(5, 0x21, 0x01))
        if places[cmd.source] is None:
            return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(5, 0x3B, 0x0E))
        if places[cmd.destination] is not None:
            return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(5, 0x3B, 0x0D))
        places[cmd.destination], places[cmd.source] = places[cmd.source], None
        self.drive = places.pop(DRIVE)
        self.slots = places
        return Response()

    def __call__(self, req: Request) -> Response:
        with self.lock:
            if self.status_override is not None:
                return Response(status=self.status_override)
            op = req.cdb[0]
            if op == 0x12:
                inq = StandardInquiry(
                    peripheral_device_type=PeripheralDeviceType.MEDIUM_CHANGER,
                    vendor_raw="TAPEPATH",
                    product_raw="FAKE CHANGER",
                    revision_raw="0001",
                )
                return Response(data=inq.to_bytes())
            if op == 0x00:
                return Response()
            if op == ReadElementStatus.OPCODE:
                return Response(data=self._element_status(ReadElementStatus.from_bytes(req.cdb)))
            if op == MoveMedium.OPCODE:
                return self._move(MoveMedium.from_bytes(req.cdb))
            return Response(status=Status.CHECK_CONDITION, sense=fixed_sense(5, 0x20, 0x00))


@pytest.fixture
def changer() -> FakeChanger:
    """A fresh fake changer."""
    return FakeChanger()


@pytest.fixture
def scsi(changer: FakeChanger) -> Iterator[SCSI]:
    """pyscsi's SCSI object over the fake changer."""
    dev = PyscsiDevice(MockTransport(changer))
    s = SCSI(dev)
    yield s
    dev.close()


def _elements(result: dict[str, object]) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    for page in result["element_status_pages"]:  # type: ignore[attr-defined]
        for d in page["element_descriptors"]:
            out[d["element_address"]] = d
    return out


class TestPyscsiCommands:
    """pyscsi's Inquiry, ReadElementStatus and MoveMedium run through the device."""

    def test_inquiry_sets_device_type(self, scsi: SCSI) -> None:
        """SCSI() sends INQUIRY at once and picks the SMC opcode table."""
        assert scsi.device.devicetype == PeripheralDeviceType.MEDIUM_CHANGER
        result = scsi.inquiry().result
        assert result["peripheral_device_type"] == 8
        assert bytes(result["t10_vendor_identification"]).rstrip() == b"TAPEPATH"
        assert scsi.device.opcodes.MOVE_MEDIUM.value == 0xA5

    def test_read_element_status(self, scsi: SCSI) -> None:
        """pyscsi decodes the element status tapepath's encoder produced."""
        cmd = scsi.readelementstatus(
            0, 100, element_type=0, voltag=1, curdata=1, dvcid=0, alloclen=4096
        )
        elements = _elements(cmd.result)
        assert sorted(elements) == [TRANSPORT, DRIVE, *SLOTS]
        assert elements[1000]["full"] == 1
        assert elements[1001]["full"] == 0
        assert bytes(elements[1000]["primary_volume_tag"])[:32].rstrip() == b"A00001L8"

    def test_move_medium(self, scsi: SCSI, changer: FakeChanger) -> None:
        """MOVE MEDIUM reaches the device; READ ELEMENT STATUS shows the new state."""
        scsi.movemedium(TRANSPORT, 1000, DRIVE)
        assert changer.drive == "A00001L8"
        assert changer.slots[1000] is None
        elements = _elements(
            scsi.readelementstatus(0, 100, element_type=4, voltag=1, alloclen=4096).result
        )
        assert elements[DRIVE]["full"] == 1

    def test_check_condition(self, scsi: SCSI) -> None:
        """An empty source is pyscsi's CheckCondition with the sense bytes and tapepath's text."""
        with pytest.raises(scsi.device.CheckCondition) as info:
            scsi.movemedium(TRANSPORT, 1001, DRIVE)
        exc = info.value
        assert isinstance(exc, SCSICheckCondition)
        assert (exc.asc, exc.ascq) == (0x3B, 0x0E)
        assert exc.data["sense_key"] == 5
        assert exc.sense == fixed_sense(5, 0x3B, 0x0E)
        assert "3B0E" in str(exc)

    def test_sense_pyscsi_cannot_print(self) -> None:
        """Deferred, key 0Ch, unlisted ASC/ASCQ, empty or cut sense print instead of failing."""
        for sense in (
            fixed_sense(3, 0x0C, 0x00, deferred=True),
            fixed_sense(0x0C, 0x00, 0x00),
            fixed_sense(4, 0x7E, 0x42),
            b"",  # CHECK CONDITION without sense data
            b"\x70\x00",  # cut short
        ):
            dev = PyscsiDevice(MockTransport(lambda _r, s=sense: Response(status=2, sense=s)))
            with pytest.raises(SCSICheckCondition) as info:
                dev.execute(_FakeCmd())
            assert str(info.value).startswith("Check Condition:")

    def test_raw_sense(self) -> None:
        """en_raw_sense keeps the bytes and skips decoding."""
        sense = fixed_sense(6, 0x29, 0x00)
        dev = PyscsiDevice(MockTransport(lambda _r: Response(status=2, sense=sense)))
        cmd = _FakeCmd()
        with pytest.raises(SCSICheckCondition) as info:
            dev.execute(cmd, en_raw_sense=True)
        assert info.value.sense == sense
        assert info.value.decoded is None  # type: ignore[attr-defined]
        assert bytes(cmd.sense) == sense

    @pytest.mark.parametrize(
        ("status", "exc"),
        [(0x18, ReservationConflict), (0x08, BusyStatus), (0x28, BusyStatus)],
    )
    def test_other_statuses(self, scsi: SCSI, changer: FakeChanger, status: int, exc: type) -> None:
        """RESERVATION CONFLICT and BUSY / TASK SET FULL raise their own classes."""
        changer.status_override = status
        with pytest.raises(exc):
            scsi.testunitready()
        assert scsi.device.ReservationConflict is ReservationConflict

    def test_path_failure(self) -> None:
        """A transport path failure is PathFailure, with maybe_executed."""
        dev = PyscsiDevice(
            MockTransport(
                lambda _r: Response.failure(Outcome.LINK_LOST, "cable", maybe_executed=False)
            )
        )
        with pytest.raises(PathFailure) as info:
            dev.execute(_FakeCmd())
        assert not info.value.maybe_executed

    def test_close(self) -> None:
        """close() closes the transport once; close_transport=False leaves it open."""
        t = MockTransport(lambda _r: Response())
        PyscsiDevice(t, close_transport=False).close()
        assert not t._closed
        dev = PyscsiDevice(t)
        dev.close()
        dev.close()
        assert t._closed

    def test_data_in_padded(self) -> None:
        """A short answer lands at the start of datain, which keeps its length."""
        dev = PyscsiDevice(MockTransport(lambda _r: Response(data=b"\x01\x02")))
        cmd = _FakeCmd(datain=8)
        dev.execute(cmd)
        assert cmd.datain == bytearray(b"\x01\x02" + bytes(6))


class _FakeCmd:
    """The attributes a pyscsi command exposes to a device."""

    def __init__(self, datain: int = 0, dataout: bytes = b"") -> None:
        self.cdb = bytearray(6)
        self.datain = bytearray(datain)
        self.dataout = bytearray(dataout)
        self.sense: bytearray | None = None


def _by_type(result: dict[str, object]) -> dict[int, list[dict[str, object]]]:
    out: dict[int, list[dict[str, object]]] = {}
    for page in result["element_status_pages"]:  # type: ignore[attr-defined]
        out.setdefault(page["element_type"], []).extend(page["element_descriptors"])
    return out


class TestVirtualLibrary:
    """pyscsi over the in-process virtual library (sim:// transport)."""

    def test_inventory_and_move(self) -> None:
        """INQUIRY, READ ELEMENT STATUS and MOVE MEDIUM against VirtualLibrary."""
        import tapepath  # noqa: PLC0415
        from tapepath.testing import VirtualLibrary  # noqa: PLC0415

        with VirtualLibrary(name="pyscsi-front-end", slots=4, drives=1, cartridges=2) as lib:
            dev = PyscsiDevice(tapepath.open_transport(lib.changer_urls()[0]))
            s = SCSI(dev)
            assert dev.devicetype == PeripheralDeviceType.MEDIUM_CHANGER
            with pytest.raises(SCSICheckCondition) as info:
                s.testunitready()  # the power-on unit attention of a new nexus
            assert info.value.asc == 0x29
            s.testunitready()
            kinds = _by_type(
                s.readelementstatus(0, 1000, element_type=0, voltag=1, alloclen=65535).result
            )
            robot = kinds[1][0]["element_address"]
            drive = kinds[4][0]["element_address"]
            full = [d for d in kinds[2] if d["full"]]
            assert len(full) == 2
            tag = bytes(full[0]["primary_volume_tag"])[:32].rstrip()
            s.movemedium(robot, full[0]["element_address"], drive)
            after = _by_type(
                s.readelementstatus(0, 1000, element_type=4, voltag=1, alloclen=65535).result
            )
            assert after[4][0]["full"] == 1
            assert bytes(after[4][0]["primary_volume_tag"])[:32].rstrip() == tag
            dev.close()


class TestMultipath:
    """The front end stands on a MultipathDevice as on a transport."""

    def test_failover_under_pyscsi(self, changer: FakeChanger) -> None:
        """A dead first path fails over; pyscsi sees only the answers."""
        from tapepath.multipath.device import MultipathDevice  # noqa: PLC0415

        dead = MockTransport(
            lambda _r: Response.failure(Outcome.LINK_LOST, "cut", maybe_executed=False),
            url="mock://dead",
        )
        good = MockTransport(changer, url="mock://good")
        dev = PyscsiDevice(MultipathDevice([dead, good], monitor=False))
        s = SCSI(dev)
        assert dev.devicetype == PeripheralDeviceType.MEDIUM_CHANGER
        s.movemedium(TRANSPORT, 1002, DRIVE)
        assert changer.drive == "A00003L8"
        assert dead.requests  # the first path was tried and failed
        assert [r.cdb[0] for r in good.requests].count(0xA5) == 1
        dev.close()
