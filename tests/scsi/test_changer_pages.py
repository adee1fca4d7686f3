"""Tests of the changer mode pages: Element Address Assignment (1Dh) and Device
Capabilities (1Fh)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.changer_pages import (
    DeviceCapabilitiesPage,
    ElementAddressAssignmentPage,
    ElementTypeSet,
)
from tapepath.scsi.element_status import ElementType
from tapepath.scsi.mode import ModePage, ModeParameters

u16 = st.integers(0, 0xFFFF)
sets = st.builds(ElementTypeSet, st.booleans(), st.booleans(), st.booleans(), st.booleans())


class TestElementAddressAssignment:
    """Page 1Dh: first address and count of each element type."""

    def test_layout(self) -> None:
        """Eight 16-bit fields in SMC order (MT, ST, I/E, DT), two reserved bytes."""
        page = ElementAddressAssignmentPage(
            first_transport=0x0001,
            transport_count=1,
            first_storage=0x1000,
            storage_count=40,
            first_import_export=0x0010,
            import_export_count=4,
            first_data_transfer=0x0100,
            data_transfer_count=2,
        )
        assert page.to_bytes() == bytes.fromhex(
            "1d 12 0001 0001 1000 0028 0010 0004 0100 0002 0000"
        )
        assert page.range_of(ElementType.STORAGE) == range(0x1000, 0x1000 + 40)
        assert page.range_of(ElementType.DATA_TRANSFER) == range(0x100, 0x102)

    def test_parse_ps(self) -> None:
        """PS is bit 7 of the page code byte."""
        page = ElementAddressAssignmentPage.from_bytes(
            bytes.fromhex("9d 12 0000 0001 0400 000a 0300 0001 0200 0004 0000")
        )
        assert page.ps
        assert (page.first_storage, page.storage_count) == (0x400, 10)
        assert (page.first_import_export, page.import_export_count) == (0x300, 1)
        assert (page.first_data_transfer, page.data_transfer_count) == (0x200, 4)

    @given(st.builds(ElementAddressAssignmentPage, *[u16] * 8, st.booleans()))
    def test_round_trip(self, page: ElementAddressAssignmentPage) -> None:
        """Whole page, body and ModePage round trips."""
        assert ElementAddressAssignmentPage.from_bytes(page.to_bytes()) == page
        assert ElementAddressAssignmentPage.from_mode_page(page.to_mode_page()) == page

    def test_inside_mode_parameters(self) -> None:
        """The page travels inside a MODE SENSE(6) parameter list."""
        page = ElementAddressAssignmentPage(first_storage=0x1000, storage_count=3)
        params = ModeParameters(pages=[page.to_mode_page()])
        back = ModeParameters.from_bytes(params.to_bytes())
        found = back.page(0x1D)
        assert found is not None
        assert ElementAddressAssignmentPage.from_mode_page(found) == page

    def test_errors(self) -> None:
        """Wrong page, short body, length past the end, range checks."""
        with pytest.raises(DecodeError):
            ElementAddressAssignmentPage.from_bytes(bytes.fromhex("1f 12") + bytes(18))
        with pytest.raises(DecodeError):
            ElementAddressAssignmentPage.from_bytes(bytes.fromhex("1d 04 0000 0000"))
        with pytest.raises(DecodeError):
            ElementAddressAssignmentPage.from_bytes(bytes.fromhex("1d 12 0000"))
        with pytest.raises(DecodeError):
            ElementAddressAssignmentPage.from_mode_page(ModePage(0x1F, bytes(18)))
        with pytest.raises(ValueError, match="storage_count"):
            ElementAddressAssignmentPage(storage_count=0x10000)
        with pytest.raises(ValueError, match="element_type"):
            ElementAddressAssignmentPage().range_of(0)


class TestDeviceCapabilities:
    """Page 1Fh: storage bits and the move/exchange matrices."""

    def test_tgtd_page(self) -> None:
        """tgtd's page (from its smc.c defaults): everything stores, moves and exchanges."""
        raw = bytes.fromhex("1f 12 0f 07 0f0f0f0f 00000000 0f0f0f0f 00000000")
        page = DeviceCapabilitiesPage.from_bytes(raw)
        assert page.storage == ElementTypeSet.all()
        for src in (1, 2, 3, 4):
            for dst in (1, 2, 3, 4):
                assert page.can_move(src, dst)
        assert all(s == ElementTypeSet.all() for s in page.exchange_from.values())

    def test_layout(self) -> None:
        """StorST+StorDT; storage moves to DT and I/E; DT moves to ST; no exchange."""
        page = DeviceCapabilitiesPage(
            storage=ElementTypeSet(storage=True, data_transfer=True),
            move_from_storage=ElementTypeSet(import_export=True, data_transfer=True),
            move_from_data_transfer=ElementTypeSet(storage=True),
        )
        assert page.to_bytes() == bytes.fromhex(
            "1f 12 0a 00 00 0c 00 02 00000000 00000000 00000000"
        )
        assert page.can_move(ElementType.STORAGE, ElementType.DATA_TRANSFER)
        assert not page.can_move(ElementType.DATA_TRANSFER, ElementType.IMPORT_EXPORT)
        assert not page.can_move(0, 2)
        assert ElementType.STORAGE in page.storage
        assert ElementType.MEDIUM_TRANSPORT not in page.storage
        assert "x" not in page.storage

    @given(st.builds(DeviceCapabilitiesPage, *[sets] * 9, st.booleans()))
    def test_round_trip(self, page: DeviceCapabilitiesPage) -> None:
        """Whole page and ModePage round trips."""
        assert DeviceCapabilitiesPage.from_bytes(page.to_bytes()) == page
        assert DeviceCapabilitiesPage.from_mode_page(page.to_mode_page()) == page

    def test_errors(self) -> None:
        """Short body, SPF page, non-set field."""
        with pytest.raises(DecodeError):
            DeviceCapabilitiesPage.from_bytes(bytes.fromhex("1f 02 0f 00"))
        with pytest.raises(DecodeError):
            DeviceCapabilitiesPage.from_bytes(bytes.fromhex("5f 12") + bytes(18))
        with pytest.raises(ValueError, match="storage"):
            DeviceCapabilitiesPage(storage=15)  # type: ignore[arg-type]
