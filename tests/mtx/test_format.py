"""mtx 1.3.12 output: status, inquiry and request sense, checked against mtx's formats."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.mtx.status import (
    MtxDrive,
    MtxSlot,
    MtxStatus,
    format_inquiry,
    format_request_sense,
    format_status,
    status_from_descriptors,
    tag_text,
)
from tapepath.scsi.element_status import ElementDescriptor, VolumeTag
from tapepath.scsi.sense import decode_sense, fixed_sense


def c_printf(fmt: str, *args: object) -> str:
    """Python's % is C's printf for the %d/%s conversions mtx uses."""
    return fmt % args


class TestStatus:
    """The status report, line by line, as mtx's printf calls write it."""

    def test_header_counts_import_export_as_slots(self) -> None:
        """The header's slot count includes import/export elements; the device text is as typed."""
        st_ = MtxStatus(
            drives=[MtxDrive(256)],
            slots=[MtxSlot(1024), MtxSlot(1025), MtxSlot(16, import_export=True)],
        )
        first = format_status("/dev/sg3", st_).splitlines()[0]
        expected = c_printf(
            "  Storage Changer %s:%d Drives, %d Slots ( %d Import/Export )", "/dev/sg3", 1, 3, 1
        )
        assert first == expected

    def test_full_drive_and_slots(self) -> None:
        """A full drive names its source and tag; full slots have the trailing blank of 'Full '."""
        st_ = MtxStatus(
            drives=[MtxDrive(256, True, 2, "VOL002  "), MtxDrive(257)],
            slots=[
                MtxSlot(1024, True, tag="VOL001"),
                MtxSlot(1025, False),
                MtxSlot(16, True, True, "VOL009"),
            ],
        )
        lines = format_status("lib", st_).split("\n")
        assert lines[1] == (
            c_printf("Data Transfer Element %d:", 0)
            + c_printf("Full (Storage Element %d Loaded)", 2)
            + c_printf(":VolumeTag = %s", "VOL002  ")
        )
        assert lines[2] == "Data Transfer Element 1:Empty"
        assert lines[3] == c_printf("      Storage Element %d%s:%s", 1, "", "Full ") + (
            ":VolumeTag=VOL001"
        )
        assert lines[4] == "      Storage Element 2:Empty"
        assert lines[5] == "      Storage Element 3 IMPORT/EXPORT:Full :VolumeTag=VOL009"
        assert lines[6] == ""  # the report ends with a newline
        assert len(lines) == 7

    def test_unknown_source_and_alternate_tags(self) -> None:
        """No source gives 'Unknown Storage Element'; alternate tags follow the primary ones."""
        st_ = MtxStatus(
            drives=[MtxDrive(256, True, None, "", "ALT1")],
            slots=[MtxSlot(1024, False, tag="", alt_tag="ALT2")],
        )
        lines = format_status("x", st_).splitlines()
        assert lines[1] == "Data Transfer Element 0:Full (Unknown Storage Element Loaded)" + (
            ":AlternateVolumeTag = ALT1"
        )
        assert lines[2] == "      Storage Element 1:Empty:AlternateVolumeTag=ALT2"


def desc(
    address: int, *, full: bool = False, tag: bytes | None = None, **kw: object
) -> ElementDescriptor:
    """An element descriptor with an optional primary tag."""
    primary = VolumeTag(tag.ljust(32, b" ")) if tag is not None else None
    return ElementDescriptor(address=address, full=full, primary_tag=primary, **kw)  # type: ignore[arg-type]


class TestFromDescriptors:
    """Numbering and source guesses as mtx makes them."""

    def test_numbering_and_import_export_last(self) -> None:
        """Slots from 1 in address order, import/export after them, drives from 0."""
        st_ = status_from_descriptors(
            drives=[desc(257), desc(256)],
            slots=[desc(1025, full=True, tag=b"B"), desc(1024, full=True, tag=b"A")],
            import_export=[desc(16)],
            transports=[desc(1)],
        )
        assert [d.address for d in st_.drives] == [256, 257]
        assert [s.address for s in st_.slots] == [1024, 1025, 16]
        assert [s.import_export for s in st_.slots] == [False, False, True]
        assert st_.slots[0].tag == "A" + " " * 31  # trailing blanks stay
        assert st_.transport == 1

    def test_source_valid(self) -> None:
        """A valid source that is an empty storage element is the drive's source."""
        st_ = status_from_descriptors(
            drives=[desc(256, full=True, tag=b"X", source_valid=True, source_address=1025)],
            slots=[desc(1024, full=True), desc(1025)],
            import_export=[],
        )
        assert st_.drives[0].source == 2

    def test_source_invalid_takes_empty_slots_in_turn(self) -> None:
        """Unusable sources take the empty ordinary slots, one each; then 'Unknown'."""
        st_ = status_from_descriptors(
            drives=[
                desc(256, full=True, source_valid=False),
                desc(257, full=True, source_valid=True, source_address=1024),
            ],
            slots=[desc(1024, full=True), desc(1025, full=True), desc(1026)],
            import_export=[],
        )
        assert [d.source for d in st_.drives] == [3, None]

    def test_import_export_is_not_guessed(self) -> None:
        """An empty import/export element is never a guessed source."""
        st_ = status_from_descriptors(
            drives=[desc(256, full=True)], slots=[desc(1024, full=True)], import_export=[desc(16)]
        )
        assert st_.drives[0].source is None

    def test_empty_drive_keeps_raw_address(self) -> None:
        """An empty drive's source is its raw source address + 1 (mtx's bookkeeping)."""
        st_ = status_from_descriptors(
            drives=[desc(256, source_address=1024)], slots=[desc(1024)], import_export=[]
        )
        assert st_.drives[0].source == 1025

    def test_no_empty_slot_is_unknown(self) -> None:
        """With no empty storage element the source is unknown."""
        st_ = status_from_descriptors(
            drives=[desc(256, full=True)], slots=[desc(1024, full=True)], import_export=[]
        )
        assert st_.drives[0].source is None
        assert "Unknown Storage Element" in format_status("d", st_)

    def test_nobarcode_drops_tags(self) -> None:
        """Without barcodes no VolumeTag is printed."""
        st_ = status_from_descriptors(
            drives=[], slots=[desc(1024, full=True, tag=b"A")], import_export=[], barcodes=False
        )
        assert "VolumeTag" not in format_status("d", st_)


class TestTagText:
    """Volume tags are copied up to the first byte outside 32..127."""

    def test_stops_at_control_byte(self) -> None:
        """A NUL or control byte ends the tag."""
        assert tag_text(b"AB\x00CD") == "AB"
        assert tag_text(b"AB\x1fCD") == "AB"
        assert tag_text(b"AB\x80") == "AB"
        assert tag_text(None) == ""

    @given(st.binary(max_size=40))
    def test_any_bytes(self, raw: bytes) -> None:
        """Any bytes give printable text that is a prefix of the input."""
        text = tag_text(raw)
        assert raw.startswith(text.encode("latin-1"))
        assert all(32 <= ord(c) <= 127 for c in text)


class TestInquiry:
    """The inquiry report."""

    def test_fields(self) -> None:
        """Type name, quoted fixed-width fields and the MChngr bit."""
        data = bytes([8, 0, 5, 2, 31, 0, 0x08, 0]) + b"VENDOR  " + b"PRODUCT 16 BYTES" + b"0100"
        assert format_inquiry(data) == (
            "Product Type: Medium Changer\n"
            "Vendor ID: 'VENDOR  '\n"
            "Product ID: 'PRODUCT 16 BYTES'\n"
            "Revision: '0100'\n"
            "Attached Changer API: Yes\n"
        )

    @given(st.binary(max_size=100))
    def test_any_data(self, data: bytes) -> None:
        """Any INQUIRY data (short included) gives the report, fields printed raw."""
        text = format_inquiry(data)
        assert text.startswith("Product Type: ")
        assert text.endswith(("Attached Changer API: Yes\n", "Attached Changer API: No\n"))


class TestRequestSense:
    """mtx's request sense report on stderr."""

    def test_move_refused(self) -> None:
        """An ILLEGAL REQUEST 3B/0D report has Bacula's 'Error Code=' line."""
        sense = decode_sense(fixed_sense(0x05, 0x3B, 0x0D))
        text = format_request_sense(sense)
        lines = text.splitlines()
        assert lines[0] == "mtx: Request Sense: Long Report=yes"
        assert "mtx: Request Sense: Error Code=70 (Current)" in lines
        assert "mtx: Request Sense: Sense Key=Illegal Request" in lines
        assert "mtx: Request Sense: Additional Sense Code = 3B" in lines
        assert "mtx: Request Sense: Additional Sense Qualifier = 0D" in lines
        assert lines[-1] == "mtx: Request Sense: SKSV=no"

    def test_residual_when_valid(self) -> None:
        """A valid INFORMATION field is printed as four hex bytes."""
        sense = decode_sense(fixed_sense(0x03, 0x11, 0x00, information=0x01020304))
        assert "mtx: Request Sense: Residual = 01 02 03 04\n" in format_request_sense(sense)

    @given(st.binary(max_size=64))
    def test_any_sense_bytes(self, raw: bytes) -> None:
        """Whatever sense data decodes gives a report that starts and ends as mtx's does."""
        try:
            sense = decode_sense(raw)
        except DecodeError:
            return
        text = format_request_sense(sense)
        assert text.startswith("mtx: Request Sense: Long Report=yes\n")
        assert all(line.startswith("mtx: Request Sense: ") for line in text.splitlines())
