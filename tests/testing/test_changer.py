"""The changer through sim:// paths: element status, moves, sense codes, mode pages."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tapepath.scsi.changer import (
    ExchangeMedium,
    InitializeElementStatus,
    MoveMedium,
    PositionToElement,
    PreventAllowMediumRemoval,
)
from tapepath.scsi.changer_pages import DeviceCapabilitiesPage, ElementAddressAssignmentPage
from tapepath.scsi.element_status import ElementStatus, ReadElementStatus
from tapepath.scsi.mode import ModeParameters, ModeSense6, ModeSense10
from tapepath.scsi.tape import LoadUnload
from tapepath.testing import ElementKind, ElementLayout, VirtualClock, VirtualLibrary
from tapepath.transport import Transport
from tests.testing.helpers import ready, sense_of


@pytest.fixture
def lib() -> Iterator[VirtualLibrary]:
    with VirtualLibrary("chg", slots=10, drives=2, import_export=2, cartridges=6) as lib:
        yield lib


@pytest.fixture
def chg(lib: VirtualLibrary) -> Transport:
    return ready(lib.changer_urls()[0])


def status(t: Transport, **kw: object) -> ElementStatus:
    cmd = ReadElementStatus(**kw)  # type: ignore[arg-type]
    r = t.execute(cmd.to_bytes(), data_in_len=cmd.allocation_length)
    assert r.ok, r
    return ElementStatus.from_bytes(r.data)


class TestElementStatus:
    """READ ELEMENT STATUS answers."""

    def test_addresses_follow_layout(self) -> None:
        """Element addresses start where the layout says, with the counts given."""
        layout = ElementLayout(
            transport_start=1, storage_start=100, import_export_start=20, drive_start=50
        )
        with VirtualLibrary("lay", slots=3, drives=2, import_export=1, layout=layout) as lib:
            t = ready(lib.changer_urls()[0])
            es = status(t)
            by_type = {}
            for page in es.pages:
                by_type[int(page.element_type)] = [d.address for d in page.descriptors]
            assert by_type == {1: [1], 2: [100, 101, 102], 3: [20], 4: [50, 51]}

    def test_voltag_barcodes_and_padding(self, lib: VirtualLibrary, chg: Transport) -> None:
        """VOLTAG gives each full slot's barcode, space padded to 32 bytes."""
        es = status(chg, element_type=2, voltag=True)
        full = [d for d in es.descriptors() if d.full]
        assert [d.barcode for d in full] == [f"TP{i:04d}L8" for i in range(1, 7)]
        assert full[0].primary_tag is not None
        assert full[0].primary_tag.identifier == b"TP0001L8" + b" " * 24

    def test_dvcid_reports_drive_serials(self, lib: VirtualLibrary, chg: Transport) -> None:
        """DVCID puts each drive's serial number in its descriptor."""
        es = status(chg, element_type=4, dvcid=True)
        ids = [d.device_id.text if d.device_id else None for d in es.descriptors()]
        assert ids == [lib.drive(0).serial, lib.drive(1).serial]

    def test_paging_by_allocation_length(self, lib: VirtualLibrary, chg: Transport) -> None:
        """A short allocation length returns whole descriptors only; the rest by address."""
        whole = status(chg, element_type=2, voltag=True)
        size = 12 + 36
        small = status(chg, element_type=2, voltag=True, allocation_length=8 + 8 + 3 * size)
        got = [d.address for d in small.descriptors()]
        assert got == [d.address for d in whole.descriptors()][:3]
        rest = status(chg, element_type=2, voltag=True, starting_address=got[-1] + 1)
        assert [d.address for d in rest.descriptors()] == [d.address for d in whole.descriptors()][
            3:
        ]

    def test_number_of_elements_limits(self, chg: Transport) -> None:
        """NUMBER OF ELEMENTS caps the descriptors."""
        es = status(chg, element_type=0, number_of_elements=2)
        assert len(list(es.descriptors())) == 2

    def test_invalid_starting_address(self, chg: Transport) -> None:
        """A starting address past every element: 21/01."""
        cmd = ReadElementStatus(starting_address=0xF000)
        r = chg.execute(cmd.to_bytes(), data_in_len=1024)
        assert sense_of(r) == (5, 0x21, 0x01)


class TestMoves:
    """MOVE MEDIUM, EXCHANGE MEDIUM and their errors."""

    def test_move_tracks_source(self, lib: VirtualLibrary, chg: Transport) -> None:
        """After a move the destination is full with SVALID and the source address."""
        src, dst = lib.slot_address(0), lib.drive_address(1)
        assert chg.execute(MoveMedium(0, src, dst).to_bytes()).ok
        assert lib.where("TP0001L8") == dst
        es = status(chg, element_type=4, voltag=True)
        d = next(d for d in es.descriptors() if d.address == dst)
        assert d.full
        assert d.source_valid
        assert d.source_address == src
        assert d.barcode == "TP0001L8"
        assert lib.tape(1) is not None

    @pytest.mark.parametrize(
        ("src", "dst", "expected"),
        [
            (0, 1, (5, 0x3B, 0x0D)),  # destination full
            (7, 8, (5, 0x3B, 0x0E)),  # source empty
            (0, 0x7777, (5, 0x21, 0x01)),  # invalid element address
        ],
    )
    def test_move_errors(
        self,
        lib: VirtualLibrary,
        chg: Transport,
        src: int,
        dst: int,
        expected: tuple[int, int, int],
    ) -> None:
        """Real sense codes for a full destination, empty source and a bad address."""
        d = dst if dst > 0xFF else lib.slot_address(dst)
        r = chg.execute(MoveMedium(0, lib.slot_address(src), d).to_bytes())
        assert sense_of(r) == expected
        assert lib.where("TP0001L8") == lib.slot_address(0)

    def test_transport_must_be_a_transport(self, lib: VirtualLibrary, chg: Transport) -> None:
        """A transport address that is a slot: 21/01."""
        r = chg.execute(
            MoveMedium(lib.slot_address(9), lib.slot_address(0), lib.slot_address(9)).to_bytes()
        )
        assert sense_of(r) == (5, 0x21, 0x01)

    def test_removal_prevented_by_drive(self, lib: VirtualLibrary, chg: Transport) -> None:
        """A drive with PREVENT set keeps its cartridge: 53/02."""
        drive = lib.drive_address(0)
        assert chg.execute(MoveMedium(0, lib.slot_address(0), drive).to_bytes()).ok
        dt = ready(lib.drive_urls(0)[0])
        assert dt.execute(PreventAllowMediumRemoval(1).to_bytes()).ok
        r = chg.execute(MoveMedium(0, drive, lib.slot_address(8)).to_bytes())
        assert sense_of(r) == (5, 0x53, 0x02)
        assert dt.execute(PreventAllowMediumRemoval(0).to_bytes()).ok
        assert chg.execute(MoveMedium(0, drive, lib.slot_address(8)).to_bytes()).ok

    def test_prevention_ends_with_its_nexus(self, lib: VirtualLibrary, chg: Transport) -> None:
        """PREVENT is per I_T nexus: it ends when that nexus is lost, not before."""
        drive = lib.drive_address(0)
        assert chg.execute(MoveMedium(0, lib.slot_address(0), drive).to_bytes()).ok
        a = ready(lib.drive_urls(0)[0])
        b = ready(lib.drive_urls(0)[1])
        assert a.execute(PreventAllowMediumRemoval(1).to_bytes()).ok
        assert b.execute(PreventAllowMediumRemoval(1).to_bytes()).ok
        lib.set_link("drive0", 0, up=False)
        assert lib.drive(0).prevent
        assert b.execute(PreventAllowMediumRemoval(0).to_bytes()).ok
        assert not lib.drive(0).prevent
        assert chg.execute(MoveMedium(0, drive, lib.slot_address(8)).to_bytes()).ok

    def test_strict_unload(self) -> None:
        """With auto_unload=False the drive must be unloaded before the robot takes it."""
        with VirtualLibrary("strict", auto_unload=False) as lib:
            chg = ready(lib.changer_urls()[0])
            drive = lib.drive_address(0)
            assert chg.execute(MoveMedium(0, lib.slot_address(0), drive).to_bytes()).ok
            r = chg.execute(MoveMedium(0, drive, lib.slot_address(20)).to_bytes())
            assert sense_of(r) == (5, 0x53, 0x00)
            dt = ready(lib.drive_urls(0)[0])
            assert dt.execute(LoadUnload(load=False).to_bytes()).ok
            assert chg.execute(MoveMedium(0, drive, lib.slot_address(20)).to_bytes()).ok

    def test_medium_changed_unit_attention(self, lib: VirtualLibrary, chg: Transport) -> None:
        """Loading a drive queues 28/00 on the drive's nexuses."""
        dt = ready(lib.drive_urls(0)[1])
        assert chg.execute(MoveMedium(0, lib.slot_address(0), lib.drive_address(0)).to_bytes()).ok
        assert sense_of(dt.execute(bytes(6))) == (6, 0x28, 0x00)
        assert dt.execute(bytes(6)).ok

    def test_exchange(self, lib: VirtualLibrary, chg: Transport) -> None:
        """EXCHANGE MEDIUM: source to first destination, its cartridge to the second."""
        s0, s1, s9 = lib.slot_address(0), lib.slot_address(1), lib.slot_address(9)
        assert chg.execute(ExchangeMedium(0, s0, s1, s9).to_bytes()).ok
        inv = lib.inventory()
        assert inv[s1] == "TP0001L8"
        assert inv[s9] == "TP0002L8"
        assert s0 not in inv

    def test_position_and_initialize(self, lib: VirtualLibrary, chg: Transport) -> None:
        """POSITION TO ELEMENT and INITIALIZE ELEMENT STATUS succeed and change nothing."""
        before = lib.inventory()
        assert chg.execute(PositionToElement(0, lib.slot_address(3)).to_bytes()).ok
        assert chg.execute(InitializeElementStatus().to_bytes()).ok
        assert lib.inventory() == before
        r = chg.execute(PositionToElement(0, 0x7777).to_bytes())
        assert sense_of(r) == (5, 0x21, 0x01)

    def test_move_in_progress_shows_cartridge_in_transport(self) -> None:
        """During a timed move the cartridge sits in the medium transport element."""
        gate = threading.Event()
        release = threading.Event()

        class Clock(VirtualClock):
            def sleep(self, seconds: float) -> None:
                gate.set()
                release.wait(5)
                super().sleep(seconds)

        with VirtualLibrary("slow", move_time=3.0, clock=Clock()) as lib:
            chg = ready(lib.changer_urls()[0])
            src = lib.slot_address(0)
            done: list[bool] = []
            th = threading.Thread(
                target=lambda: done.append(
                    chg.execute(MoveMedium(0, src, lib.slot_address(20)).to_bytes()).ok
                )
            )
            th.start()
            assert gate.wait(5)
            other = ready(lib.changer_urls()[0])
            es = status(other, element_type=1, voltag=True)
            d = next(iter(es.descriptors()))
            assert d.full
            assert d.barcode == "TP0001L8"
            assert d.source_address == src
            busy = other.execute(
                MoveMedium(0, lib.slot_address(1), lib.slot_address(21)).to_bytes()
            )
            assert sense_of(busy) == (2, 0x04, 0x01)
            release.set()
            th.join(5)
            assert done == [True]
            assert lib.where("TP0001L8") == lib.slot_address(20)
            assert lib.clock.now() == pytest.approx(3.0)

    def test_destination_filled_during_move(self) -> None:
        """An operator filling the destination mid-move: 3B/0D, cartridge kept in the gripper."""
        gate = threading.Event()
        release = threading.Event()

        class Clock(VirtualClock):
            def sleep(self, seconds: float) -> None:
                gate.set()
                release.wait(5)
                super().sleep(seconds)

        with VirtualLibrary("race", move_time=1.0, clock=Clock()) as lib:
            chg = ready(lib.changer_urls()[0])
            dst = lib.slot_address(20)
            result: list[object] = []
            th = threading.Thread(
                target=lambda: result.append(
                    chg.execute(MoveMedium(0, lib.slot_address(0), dst).to_bytes())
                )
            )
            th.start()
            assert gate.wait(5)
            lib.insert(dst, "HAND01L8")
            release.set()
            th.join(5)
            assert sense_of(result[0]) == (5, 0x3B, 0x0D)  # type: ignore[arg-type]
            assert lib.where("TP0001L8") == lib.layout.transport_start
            assert lib.where("HAND01L8") == dst


class TestOperator:
    """Operator actions on the library."""

    def test_mail_slot_access_notifies(self, lib: VirtualLibrary, chg: Transport) -> None:
        """Putting a cartridge in a mail slot posts 28/01; status shows ImpExp."""
        ie = lib.changer.of_kind(ElementKind.IMPORT_EXPORT)[0].address
        lib.insert(ie, "NEW001L8")
        assert sense_of(chg.execute(bytes(6))) == (6, 0x28, 0x01)
        es = status(chg, element_type=3, voltag=True)
        d = next(iter(es.descriptors()))
        assert d.impexp
        assert d.barcode == "NEW001L8"

    def test_prevent_locks_mail_slots(self, lib: VirtualLibrary, chg: Transport) -> None:
        """With PREVENT on the changer an operator cannot take from a mail slot."""
        ie = lib.changer.of_kind(ElementKind.IMPORT_EXPORT)[0].address
        assert chg.execute(MoveMedium(0, lib.slot_address(0), ie).to_bytes()).ok
        assert chg.execute(PreventAllowMediumRemoval(1).to_bytes()).ok
        with pytest.raises(ValueError, match="prevented"):
            lib.remove(ie)
        assert chg.execute(PreventAllowMediumRemoval(0).to_bytes()).ok
        assert lib.remove(ie).barcode == "TP0001L8"

    def test_duplicate_barcode_refused(self, lib: VirtualLibrary) -> None:
        """Barcodes stay unique."""
        with pytest.raises(ValueError, match="already"):
            lib.insert(lib.slot_address(9), "TP0001L8")


class TestModePages:
    """MODE SENSE pages 1Dh and 1Fh."""

    def test_element_address_assignment(self, lib: VirtualLibrary, chg: Transport) -> None:
        """Page 1Dh repeats the layout."""
        r = chg.execute(ModeSense6(page_code=0x1D, dbd=True).to_bytes(), data_in_len=255)
        params = ModeParameters.from_bytes(r.data)
        page = params.page(0x1D)
        assert page is not None
        eaa = ElementAddressAssignmentPage.from_mode_page(page)
        lay = lib.layout
        assert (eaa.first_storage, eaa.storage_count) == (lay.storage_start, 10)
        assert (eaa.first_data_transfer, eaa.data_transfer_count) == (lay.drive_start, 2)
        assert (eaa.first_import_export, eaa.import_export_count) == (lay.import_export_start, 2)

    def test_all_pages_ten_byte(self, chg: Transport) -> None:
        """MODE SENSE(10) with page 3Fh returns both pages."""
        r = chg.execute(ModeSense10(page_code=0x3F, dbd=True).to_bytes(), data_in_len=1024)
        params = ModeParameters.from_bytes(r.data, ten_byte=True)
        caps = params.page(0x1F)
        assert caps is not None
        assert DeviceCapabilitiesPage.from_mode_page(caps).storage.storage
        assert params.page(0x1D) is not None

    def test_unknown_page(self, chg: Transport) -> None:
        """An unsupported page is 24/00."""
        r = chg.execute(ModeSense6(page_code=0x08).to_bytes(), data_in_len=255)
        assert sense_of(r) == (5, 0x24, 0x00)
