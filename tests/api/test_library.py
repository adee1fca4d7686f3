"""Library moves: by address, barcode and Element; load/unload/transfer in mtx numbering."""

from __future__ import annotations

import threading

import pytest

import tapepath
from tapepath.api import default_recovery
from tapepath.errors import (
    ElementAddressError,
    ElementEmptyError,
    ElementFullError,
    MediumRemovalPreventedError,
    UnknownElementError,
)
from tapepath.inventory import ElementKind
from tapepath.multipath import PathState
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.inquiry import Inquiry
from tapepath.testing import (
    AtCommand,
    Busy,
    ControlPathFailure,
    FaultPlan,
    LinkDown,
    ResponseLost,
    VirtualClock,
    VirtualLibrary,
    When,
)


class TestMove:
    """move() and exchange() take an Element, an address or a barcode."""

    def test_by_address(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """A cartridge moves between two addresses."""
        src, dst = virtual_library.slot_address(0), virtual_library.slot_address(23)
        library.move(src, dst)
        assert virtual_library.where("TP0001L8") == dst
        assert virtual_library.element(src).cartridge is None

    def test_by_barcode(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """A barcode names the element holding that cartridge."""
        library.move("TP0005L8", virtual_library.drive_address(1))
        assert virtual_library.where("TP0005L8") == virtual_library.drive_address(1)

    def test_by_element(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """Elements from an inventory can be passed as they are."""
        inv = library.inventory()
        library.move(inv.slot(2), inv.import_export[0])
        assert virtual_library.where("TP0002L8") == inv.import_export[0].address

    def test_exchange_swaps(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """exchange(a, b) swaps two cartridges."""
        a, b = virtual_library.slot_address(0), virtual_library.slot_address(1)
        library.exchange("TP0001L8", "TP0002L8")
        assert virtual_library.where("TP0001L8") == b
        assert virtual_library.where("TP0002L8") == a

    def test_exchange_to_a_second_destination(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """exchange(a, b, c): a goes to b, b's cartridge to c."""
        a, b, c = (virtual_library.slot_address(i) for i in (0, 1, 23))
        library.exchange(a, b, c)
        assert virtual_library.where("TP0001L8") == b
        assert virtual_library.where("TP0002L8") == c
        assert virtual_library.element(a).cartridge is None

    def test_bad_references(self, library: tapepath.Library) -> None:
        """Unknown barcodes, addresses and types are refused before anything moves."""
        with pytest.raises(UnknownElementError):
            library.move("NOSUCH", 0x1000)
        with pytest.raises(ElementAddressError):
            library.move(0x1000, 0x7777)
        with pytest.raises(ValueError, match="65535"):
            library.move(0x1000, 1 << 16)
        with pytest.raises(TypeError):
            library.move(1.5, 0x1000)  # type: ignore[arg-type]


class TestMtxNumbering:
    """load, unload and transfer number slots from 1 and drives from 0."""

    def test_load_and_unload_home(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """unload() with no slot puts the cartridge back where it came from."""
        library.load(4, 1)
        assert virtual_library.where("TP0004L8") == virtual_library.drive_address(1)
        assert library.unload(1) == 4
        assert virtual_library.where("TP0004L8") == virtual_library.slot_address(3)

    def test_unload_when_home_is_taken(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """With its source slot full, the cartridge goes to the first empty slot (as mtx)."""
        library.load(1, 0)
        library.transfer(2, 1)
        first_empty = next(
            i + 1
            for i in range(24)
            if virtual_library.element(virtual_library.slot_address(i)).cartridge is None
        )
        assert library.unload(0) == first_empty
        assert virtual_library.where("TP0001L8") == virtual_library.slot_address(first_empty - 1)

    def test_unload_to_a_given_slot_and_import_export(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """An explicit slot number may be an import/export element (numbered after the slots)."""
        library.load(1, 0)
        assert library.unload(0, 25) == 25
        assert virtual_library.where("TP0001L8") == library.inventory().import_export[0].address

    def test_transfer(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """transfer(src, dst) moves between slot numbers."""
        library.transfer(3, 24)
        assert virtual_library.where("TP0003L8") == virtual_library.slot_address(23)

    def test_drive_for(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """drive_for(serial) gives the drive element with that DVCID serial."""
        serial = virtual_library.drive(1).serial
        assert library.drive_for(serial).address == virtual_library.drive_address(1)
        with pytest.raises(UnknownElementError):
            library.drive_for("NOT-A-SERIAL")

    def test_initialize(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """initialize() runs INITIALIZE ELEMENT STATUS; the inventory reads the same after."""
        before = library.inventory()
        library.initialize()
        assert library.inventory() == before


class TestErrors:
    """Refusals are typed and their messages name the elements."""

    def test_destination_full(self, library: tapepath.Library) -> None:
        """Loading a full drive is ElementFullError (3B/0D) and names both ends."""
        library.load(1, 0)
        with pytest.raises(ElementFullError, match=r"slot 2 .*drive 0") as err:
            library.load(2, 0)
        assert err.value.sense is not None
        assert err.value.sense.asc == 0x3B

    def test_source_empty(self, library: tapepath.Library) -> None:
        """Moving from an empty slot is ElementEmptyError (3B/0E)."""
        with pytest.raises(ElementEmptyError, match="slot 24"):
            library.transfer(24, 23)

    def test_unload_an_empty_drive(self, library: tapepath.Library) -> None:
        """unload() of an empty drive says so without sending a move."""
        with pytest.raises(ElementEmptyError, match="drive 1 is empty"):
            library.unload(1)

    def test_numbers_out_of_range(self, library: tapepath.Library) -> None:
        """Slot 0, slot 29 and drive 5 do not exist."""
        for call in (
            lambda: library.load(0, 0),
            lambda: library.load(29, 0),
            lambda: library.load(1, 5),
        ):
            with pytest.raises(UnknownElementError):
                call()

    def test_removal_prevented(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """A drive that prevents removal refuses the unload with 53/02 until it allows it."""
        library.load(1, 0)
        with tapepath.open_drive(virtual_library.drive_urls(0), monitor=False) as drive:
            drive.prevent_removal()
            with pytest.raises(MediumRemovalPreventedError):
                library.unload(0)
            assert virtual_library.where("TP0001L8") == virtual_library.drive_address(0)
            drive.prevent_removal(False)
            assert library.unload(0) == 1


class TestPathsAndLifecycle:
    """paths, close() and the context manager."""

    def test_paths(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """Both control paths are there: the active one first, the standby one passive."""
        paths = library.paths
        assert [p.url for p in paths] == virtual_library.changer_urls()
        assert [p.state for p in paths] == [PathState.ACTIVE, PathState.PASSIVE]

    def test_closed(self, virtual_library: VirtualLibrary) -> None:
        """A closed library refuses commands; close() twice is fine."""
        lib = tapepath.open_library(virtual_library.changer_urls(), monitor=False)
        with lib:
            assert not lib.closed
        assert lib.closed
        lib.close()
        with pytest.raises(tapepath.TapepathError, match="closed"):
            lib.inventory()


class TestThreads:
    """Several threads can share one Library."""

    def test_concurrent_transfers_and_inventories(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """Four threads shuttle their own cartridges; nothing is lost, nothing fails."""
        errors: list[BaseException] = []

        def shuttle(src: int, dst: int) -> None:
            try:
                for _ in range(10):
                    library.transfer(src, dst)
                    library.inventory()
                    library.transfer(dst, src)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=shuttle, args=(i + 1, 19 + i)) for i in range(4)]
        before = virtual_library.inventory()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert virtual_library.inventory() == before


class TestFailover:
    """A lost control path does not stop the robot."""

    def test_cut_active_control_path(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan, library: tapepath.Library
    ) -> None:
        """The active control path goes down mid-session; inventory and moves go on."""
        library.load(1, 0)
        fault_plan.add(LinkDown(device="changer", port=0, trigger=AtCommand(1)))
        inv = library.inventory()
        assert inv.drive(0).barcode == "TP0001L8"
        library.unload(0)
        library.load(2, 1)
        assert virtual_library.where("TP0001L8") == virtual_library.slot_address(0)
        assert virtual_library.where("TP0002L8") == virtual_library.drive_address(1)
        assert virtual_library.active_control_path() == 1
        assert library.paths[0].state is PathState.FAILED

    def test_control_path_failure_during_moves(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan, library: tapepath.Library
    ) -> None:
        """The library moves its control path away mid-session; each move happens once."""
        fault_plan.add(ControlPathFailure(device="changer", trigger=AtCommand(3)))
        for slot in (1, 2, 3):
            library.transfer(slot, slot + 20)
        for slot in (1, 2, 3):
            assert virtual_library.where(f"TP000{slot}L8") == virtual_library.slot_address(
                slot + 19
            )
        assert fault_plan.fired

    def test_lost_move_response_moves_once(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan, library: tapepath.Library
    ) -> None:
        """A MOVE MEDIUM that ran but whose answer was lost is not sent again."""
        if default_recovery("changer") is None:
            pytest.skip("tapepath.recovery is not installed")
        fault_plan.add(
            ResponseLost(
                device="changer", port=0, trigger=When(lambda c: c.opcode == 0xA5), times=1
            )
        )
        library.load(1, 1)
        assert fault_plan.fired
        assert virtual_library.where("TP0001L8") == virtual_library.drive_address(1)
        assert library.unload(1) == 1
        assert virtual_library.where("TP0001L8") == virtual_library.slot_address(0)


class TestExecute:
    """Library.execute: one command through the multipath device, typed errors, failover."""

    def test_inquiry(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """INQUIRY answers with a medium changer (peripheral type 8)."""
        r = library.execute(Inquiry(allocation_length=96).to_bytes(), data_in_len=96)
        assert r.ok
        assert r.data[0] & 0x1F == 8

    def test_typed_error(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """A MOVE MEDIUM from an empty slot raises ElementEmptyError naming the command."""
        empty = virtual_library.slot_address(23)
        cdb = MoveMedium(0, empty, virtual_library.slot_address(22)).to_bytes()
        with pytest.raises(ElementEmptyError, match="my move"):
            library.execute(cdb, what="my move")

    def test_fails_over(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """A MOVE MEDIUM whose path goes down finishes on the other control path, once."""
        virtual_library.install(
            FaultPlan().add(LinkDown(device="changer", port=0, trigger=AtCommand(1)))
        )
        src, dst = virtual_library.slot_address(0), virtual_library.slot_address(23)
        library.execute(MoveMedium(0, src, dst).to_bytes(), what="MOVE")
        assert virtual_library.where("TP0001L8") == dst

    def test_empty_cdb(self, library: tapepath.Library) -> None:
        """An empty CDB is a ValueError, sent nowhere."""
        with pytest.raises(ValueError, match="empty"):
            library.execute(b"")


class TestDescriptors:
    """Library.descriptors: one element type, with or without volume tags."""

    def test_with_and_without_voltag(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """Every slot in address order; barcodes only when VOLTAG is asked."""
        with_tags = library.descriptors(ElementKind.SLOT)
        without = library.descriptors(ElementKind.SLOT, voltag=False)
        addresses = [virtual_library.slot_address(i) for i in range(24)]
        assert [d.address for d in with_tags] == addresses
        assert [d.address for d in without] == addresses
        assert with_tags[0].barcode == "TP0001L8"
        assert all(d.barcode is None for d in without)
        assert [d.full for d in with_tags] == [d.full for d in without]

    def test_dvcid_for_drives(self, library: tapepath.Library) -> None:
        """Drives give their identifiers with dvcid=True."""
        drives = library.descriptors(ElementKind.DRIVE, dvcid=True)
        assert len(drives) == 2
        assert all(d.device_id is not None for d in drives)


class TestVirtualTime:
    """Retry waits use the device's clock: on a virtual library they move its clock."""

    def test_busy_retries_wait_on_the_virtual_clock(self) -> None:
        """Five BUSY answers before a move: the waits (10+20+40+80+160 ms) pass on the clock."""
        clock = VirtualClock()
        with VirtualLibrary("busy-virtual-time", clock=clock) as vlib:
            with tapepath.open_library(vlib.changer_urls(), monitor=False) as lib:
                lib.inventory()
                vlib.install(
                    FaultPlan().add(
                        Busy(device="changer", port=0, trigger=AtCommand(1), times=5),
                        Busy(device="changer", port=1, trigger=AtCommand(1), times=5),
                    )
                )
                before = clock.now()
                lib.load(1, 0)
                waited = clock.now() - before
            assert vlib.where("TP0001L8") == vlib.drive_address(0)
        assert waited >= 0.31 - 1e-9
