"""Library.inventory(): mtx numbering, barcodes, sources, serials, paging and tgtd's quirks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tapepath
from tapepath.errors import DecodeError, UnknownElementError
from tapepath.inventory import Element, ElementKind, Inventory
from tapepath.library import fill_cut_descriptor
from tapepath.scsi.element_status import (
    DeviceIdentifier,
    ElementDescriptor,
    ElementStatus,
    ElementStatusPage,
    ReadElementStatus,
    VolumeTag,
)
from tapepath.scsi.sense import SenseKey, fixed_sense
from tapepath.testing import MockTransport, Request, VirtualLibrary
from tapepath.transport.base import Response


def _counting(url: str) -> MockTransport:
    """A mock that passes every command to a real sim port and records it."""
    sim = tapepath.open_transport(url)

    def handle(req: Request) -> Response:
        return sim.execute(
            req.cdb, data_out=req.data_out, data_in_len=req.data_in_len, timeout=req.timeout
        )

    return MockTransport(handle, url="mock://counting")


class TestNumbering:
    """Elements are numbered as mtx numbers them and match the library's addresses."""

    def test_drives_from_zero(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """Drive i is the element at the library's drive address i."""
        inv = library.inventory()
        assert [e.ordinal for e in inv.drives] == list(range(virtual_library.drive_count))
        assert [e.address for e in inv.drives] == [
            virtual_library.drive_address(i) for i in range(virtual_library.drive_count)
        ]
        assert all(e.kind is ElementKind.DRIVE for e in inv.drives)

    def test_slots_from_one_then_import_export(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """Slots are 1..N, import/export elements N+1.. (mtx counts them as slots)."""
        inv = library.inventory()
        n = len(inv.slots)
        assert n == 24
        assert [e.ordinal for e in inv.slots] == list(range(1, n + 1))
        assert [e.ordinal for e in inv.import_export] == list(range(n + 1, n + 5))
        assert [e.address for e in inv.slots] == [virtual_library.slot_address(i) for i in range(n)]
        assert inv.slot(n + 1) == inv.import_export[0]
        assert inv.storage == inv.slots + inv.import_export
        assert [e.ordinal for e in inv.transports] == [0]

    def test_every_element_once(self, library: tapepath.Library) -> None:
        """Iteration yields every element once, and element() finds each by address."""
        inv = library.inventory()
        addresses = [e.address for e in inv]
        assert len(addresses) == len(set(addresses)) == len(inv) == 1 + 2 + 24 + 4
        for e in inv:
            assert inv.element(e.address) == e

    def test_unknown_numbers(self, library: tapepath.Library) -> None:
        """Numbers and addresses outside the library raise UnknownElementError."""
        inv = library.inventory()
        for bad in (0, 29):
            with pytest.raises(UnknownElementError):
                inv.slot(bad)
        with pytest.raises(UnknownElementError):
            inv.drive(2)
        with pytest.raises(UnknownElementError):
            inv.element(0x7777)


class TestContents:
    """Fullness, barcodes, sources and serial numbers agree with the library's state."""

    def test_barcodes_match_the_library(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """Every full element carries the library's barcode, stripped of its padding."""
        truth = {a: b for a, b in virtual_library.inventory().items() if b is not None}
        inv = library.inventory()
        assert inv.barcodes == {b: a for a, b in truth.items()}
        for e in inv:
            assert e.full == (e.address in truth)
            assert e.barcode == truth.get(e.address)

    def test_find_by_barcode(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """find() returns the element holding a cartridge; unknown barcodes raise."""
        inv = library.inventory()
        assert inv.find("TP0003L8").address == virtual_library.where("TP0003L8")
        assert inv.find("TP0003L8   ").address == virtual_library.where("TP0003L8")
        with pytest.raises(UnknownElementError, match="NOPE"):
            inv.find("NOPE")

    def test_source_after_a_load(
        self, virtual_library: VirtualLibrary, library: tapepath.Library
    ) -> None:
        """A loaded drive reports the slot its cartridge came from."""
        library.load(3, 1)
        d = library.inventory().drive(1)
        assert d.full
        assert d.barcode == "TP0003L8"
        assert d.source == virtual_library.slot_address(2)
        assert library.inventory().slot(3).source is None

    def test_serials(self, virtual_library: VirtualLibrary, library: tapepath.Library) -> None:
        """Each drive's DVCID serial is the drive's own serial number."""
        inv = library.inventory()
        serials = [virtual_library.drive(i).serial for i in range(virtual_library.drive_count)]
        assert [e.serial for e in inv.drives] == serials
        assert inv.drive_for(serials[1]) == inv.drives[1]
        assert all(e.serial is None for e in inv.slots)

    def test_empty_slot_has_no_label(self, library: tapepath.Library) -> None:
        """An empty element has no barcode and no source; str() says so."""
        e = library.inventory().slot(24)
        assert not e.full
        assert e.barcode is None
        assert e.source is None
        assert "empty" in str(e)
        assert e.label == "slot 24"


class TestPaging:
    """READ ELEMENT STATUS is read one type at a time and paged by allocation length."""

    @pytest.mark.parametrize("page_bytes", [64, 100, 300, 1024])
    def test_small_pages_give_the_same_inventory(
        self, virtual_library: VirtualLibrary, page_bytes: int
    ) -> None:
        """Any page size gives the inventory a single large page gives."""
        urls = virtual_library.changer_urls()
        with tapepath.open_library(urls, monitor=False) as big:
            expected = big.inventory()
        with tapepath.open_library(urls, monitor=False, page_bytes=page_bytes) as small:
            assert small.inventory() == expected

    def test_one_type_per_command_and_several_pages(self, virtual_library: VirtualLibrary) -> None:
        """Each command asks for one element type; 24 slots in 300-byte pages take several."""
        mock = _counting(virtual_library.changer_urls()[0])
        lib = tapepath.Library(mock, page_bytes=300)
        inv = lib.inventory()
        cdbs = [ReadElementStatus.from_bytes(r.cdb) for r in mock.requests if r.cdb[0] == 0xB8]
        assert {c.element_type for c in cdbs} == {1, 2, 3, 4}
        slot_reads = [c for c in cdbs if c.element_type == 2]
        assert len(slot_reads) > 1
        starts = [c.starting_address for c in slot_reads]
        assert starts == sorted(starts)
        assert len(set(starts)) == len(starts)
        assert all(c.allocation_length == 300 for c in cdbs)
        assert len(inv.slots) == 24
        assert all(c.dvcid == (c.element_type == 4) for c in cdbs)


def _page(
    etype: int, descriptors: list[ElementDescriptor], *, dvcid: bool = False
) -> ElementStatusPage:
    dlen = 12 + 36 + (4 + 16 if dvcid else 0)
    return ElementStatusPage(etype, descriptors, pvoltag=True, descriptor_length=dlen)


def _tgtd_like(pages: dict[int, ElementStatusPage]) -> MockTransport:
    """A changer answering as tgtd does: a wrong first address and 8 bytes missing."""

    def handle(req: Request) -> Response:
        if req.cdb[0] != 0xB8:
            return Response()
        cmd = ReadElementStatus.from_bytes(req.cdb)
        page = pages[cmd.element_type]
        kept = [d for d in page.descriptors if d.address >= cmd.starting_address]
        full = ElementStatus(
            0x4242,
            pages=[
                ElementStatusPage(
                    page.element_type, kept, pvoltag=True, descriptor_length=page.descriptor_length
                )
            ],
        ).to_bytes()
        return Response(data=full[:-8])

    return MockTransport(handle, url="mock://tgtd")


class TestTgtdQuirks:
    """The last descriptor arrives cut (tgtd); what it holds is kept."""

    def test_cut_last_descriptor(self) -> None:
        """The cut drive keeps its barcode and source; its serial is lost, not invented."""

        def tag(text: str) -> VolumeTag:
            return VolumeTag.from_text(text)

        blank = VolumeTag(b" " * 32)

        def dev(serial: str) -> DeviceIdentifier:
            return DeviceIdentifier(2, 0, serial.encode().ljust(16))

        pages = {
            1: _page(1, [ElementDescriptor(1, primary_tag=blank)]),
            2: _page(
                2,
                [
                    ElementDescriptor(1000, full=True, primary_tag=tag("AAA001")),
                    ElementDescriptor(1001, primary_tag=blank),
                ],
            ),
            3: _page(3, [ElementDescriptor(500, impexp=True, primary_tag=blank)]),
            4: _page(
                4,
                [
                    ElementDescriptor(100, primary_tag=blank, device_id=dev("SER0")),
                    ElementDescriptor(
                        101,
                        full=True,
                        primary_tag=tag("BBB002"),
                        source_valid=True,
                        source_address=1001,
                        device_id=dev("SER1"),
                    ),
                ],
                dvcid=True,
            ),
        }
        lib = tapepath.Library(_tgtd_like(pages))
        inv = lib.inventory()
        assert [e.address for e in inv.slots] == [1000, 1001]
        assert inv.slots[1].partial
        assert not inv.slots[1].full
        d1 = inv.drives[1]
        assert d1.partial
        assert d1.full
        assert d1.barcode == "BBB002"
        assert d1.source == 1001
        assert d1.serial is None
        assert inv.drives[0].serial == "SER0"
        assert inv.import_export[0].ordinal == 3


class TestValues:
    """Inventory and Element validate what they hold."""

    def test_wrong_kind_in_a_list(self) -> None:
        """A drive in the slot list is refused."""
        drive = Element(ElementKind.DRIVE, 0x100, 0)
        with pytest.raises(ValueError, match="slot"):
            Inventory(slots=[drive])

    def test_kind_codes(self) -> None:
        """ElementKind maps to and from the SMC element type codes."""
        for kind in ElementKind:
            assert ElementKind.of(kind.element_type) is kind
        with pytest.raises(ValueError, match="element type 7"):
            ElementKind.of(7)

    def test_first_empty_slot(self) -> None:
        """first_empty_slot skips full slots and never picks an import/export element."""
        slots = [Element(ElementKind.SLOT, 10 + i, i + 1, full=i < 2) for i in range(3)]
        ie = [Element(ElementKind.IMPORT_EXPORT, 5, 4)]
        assert Inventory(slots=slots, import_export=ie).first_empty_slot() == slots[2]
        assert Inventory(slots=slots[:2], import_export=ie).first_empty_slot() is None


_descriptors = st.lists(
    st.builds(
        ElementDescriptor,
        address=st.integers(0, 0xFFFF),
        full=st.booleans(),
        source_valid=st.booleans(),
        source_address=st.integers(0, 0xFFFF),
        primary_tag=st.builds(VolumeTag, st.binary(min_size=32, max_size=32)),
    ),
    max_size=6,
)


class TestArbitraryAnswers:
    """Whatever bytes the changer sends, inventory() returns or raises DecodeError."""

    @given(st.binary(max_size=400), st.integers(min_value=64, max_value=512))
    def test_arbitrary_bytes(self, blob: bytes, page_bytes: int) -> None:
        """No other exception escapes, and the loop ends."""
        mock = MockTransport(lambda req: Response(data=blob), url="mock://fuzz")
        lib = tapepath.Library(mock, page_bytes=page_bytes)
        try:
            inv = lib.inventory()
        except DecodeError:
            return
        assert isinstance(inv, Inventory)
        assert len(mock.requests) <= 4 * 4096

    @given(_descriptors, st.integers(0, 400), st.integers(min_value=64, max_value=512))
    def test_cut_real_pages(
        self, descs: list[ElementDescriptor], cut: int, page_bytes: int
    ) -> None:
        """Well-formed pages cut anywhere (as tgtd and short allocations do) parse or raise."""

        def handle(req: Request) -> Response:
            etype = ReadElementStatus.from_bytes(req.cdb).element_type
            page = ElementStatusPage(etype, descs, pvoltag=True)
            return Response(data=ElementStatus(pages=[page]).to_bytes()[: max(cut, 8)])

        lib = tapepath.Library(MockTransport(handle, url="mock://cut"), page_bytes=page_bytes)
        try:
            inv = lib.inventory()
        except DecodeError:
            return
        assert all(e.address in {d.address for d in descs} for e in inv)


def _tgtd_without_voltag(pages: dict[int, list[ElementDescriptor]]) -> MockTransport:
    """A changer that refuses VOLTAG (24/00) and, without it, answers as tgtd does:
    16-byte descriptors, 8 bytes fewer sent than announced."""

    def handle(req: Request) -> Response:
        if req.cdb[0] != 0xB8:
            return Response()
        cmd = ReadElementStatus.from_bytes(req.cdb)
        if cmd.voltag:
            return Response(status=2, sense=fixed_sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0))
        kept = [d for d in pages[cmd.element_type] if d.address >= cmd.starting_address]
        page = ElementStatusPage(cmd.element_type, kept, descriptor_length=16)
        return Response(data=ElementStatus(0x4242, pages=[page]).to_bytes()[:-8])

    return MockTransport(handle, url="mock://tgtd-no-voltag")


class TestCutWithoutVoltag:
    """Without VOLTAG tgtd's last descriptor arrives with 8 of its 16 bytes: kept, zero-filled."""

    def test_every_element_after_the_fallback(self) -> None:
        """The last transport, slot, import/export and drive are all in the inventory."""
        pages = {
            1: [ElementDescriptor(1)],
            2: [
                ElementDescriptor(1000, full=True, source_valid=True, source_address=100),
                ElementDescriptor(1001),
                ElementDescriptor(1002, full=True, source_valid=True, source_address=101),
            ],
            3: [ElementDescriptor(500, impexp=True, full=True)],
            4: [
                ElementDescriptor(100, full=True, source_valid=True, source_address=1001),
                ElementDescriptor(101),
            ],
        }
        mock = _tgtd_without_voltag(pages)
        inv = tapepath.Library(mock).inventory()
        assert [e.address for e in inv.transports] == [1]
        assert [e.address for e in inv.slots] == [1000, 1001, 1002]
        assert [e.address for e in inv.import_export] == [500]
        assert [e.address for e in inv.drives] == [100, 101]
        assert [e.full for e in inv.slots] == [True, False, True]
        assert inv.import_export[0].full
        # what arrived whole keeps its source; the cut one's source was not received
        assert inv.slots[0].source == 100
        assert not inv.slots[0].partial
        assert inv.slots[2].partial
        assert inv.slots[2].source is None
        assert inv.drives[0].source == 1001
        assert inv.drives[1].partial
        assert not any(ReadElementStatus.from_bytes(r.cdb).voltag for r in mock.requests[-4:])

    def test_descriptors_without_voltag(self) -> None:
        """descriptors(kind, voltag=False) returns the cut last slot as partial."""
        pages = {2: [ElementDescriptor(1000 + i, full=i % 2 == 0) for i in range(5)]}
        lib = tapepath.Library(_tgtd_without_voltag(pages))
        got = lib.descriptors(ElementKind.SLOT, voltag=False)
        assert [d.address for d in got] == [1000 + i for i in range(5)]
        assert [d.full for d in got] == [True, False, True, False, True]
        assert [d.partial for d in got] == [False] * 4 + [True]


class TestFillCutDescriptor:
    """fill_cut_descriptor zero-fills the fixed part of a cut last descriptor, and only that."""

    def test_cut_by_the_allocation_is_left_alone(self) -> None:
        """An answer as long as the allocation is the allocation's cut: the next page reads on."""
        page = ElementStatusPage(
            2, [ElementDescriptor(7), ElementDescriptor(8)], descriptor_length=16
        )
        data = ElementStatus(pages=[page]).to_bytes()[:-8]
        assert fill_cut_descriptor(data, len(data)) == data
        assert fill_cut_descriptor(data, len(data) + 8) == data + bytes(4)

    def test_too_little_of_it_arrived(self) -> None:
        """Under the address and flags nothing is invented."""
        page = ElementStatusPage(
            2, [ElementDescriptor(7), ElementDescriptor(8)], descriptor_length=16
        )
        data = ElementStatus(pages=[page]).to_bytes()[:-14]
        assert fill_cut_descriptor(data, 0xFFFF) == data

    @given(st.binary(max_size=300), st.integers(0, 0x10000))
    def test_arbitrary_bytes(self, blob: bytes, alloc: int) -> None:
        """Any bytes: the answer is kept as a prefix and at most 11 zero bytes are added."""
        out = fill_cut_descriptor(blob, alloc)
        assert out[: len(blob)] == blob
        assert out[len(blob) :] == bytes(len(out) - len(blob))
        assert len(out) - len(blob) <= 11
