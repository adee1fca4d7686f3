"""Tests of READ ELEMENT STATUS: the CDB, the element status data, volume tags, device
identifiers, multi-page answers, answers cut short, and tgtd's answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.element_status import (
    DeviceIdentifier,
    ElementDescriptor,
    ElementStatus,
    ElementStatusPage,
    ElementType,
    ReadElementStatus,
    VolumeTag,
)


def be(value: int, size: int) -> bytes:
    """Big-endian bytes (test helper for hand-built layouts)."""
    return value.to_bytes(size, "big")


def tag(text: str, seq: int = 0) -> bytes:
    """A hand-built 36-byte volume tag field."""
    return text.encode().ljust(32, b" ") + b"\0\0" + be(seq, 2)


def header(first: int, count: int, byte_count: int) -> bytes:
    """The 8-byte element status data header."""
    return be(first, 2) + be(count, 2) + b"\0" + be(byte_count, 3)


def page_header(etype: int, flags: int, dlen: int, byte_count: int) -> bytes:
    """The 8-byte element status page header."""
    return bytes((etype, flags)) + be(dlen, 2) + b"\0" + be(byte_count, 3)


class TestReadElementStatusCdb:
    """READ ELEMENT STATUS B8h."""

    def test_layout(self) -> None:
        """VOLTAG byte 1 bit 4, type bits 3-0, CURDATA/DVCID byte 6, 24-bit length at 7-9."""
        cmd = ReadElementStatus(
            element_type=ElementType.STORAGE,
            voltag=True,
            starting_address=0x0400,
            number_of_elements=10,
            curdata=True,
            dvcid=True,
            allocation_length=0x012345,
        )
        assert cmd.to_bytes() == bytes.fromhex("b8 12 0400 000a 03 012345 00 00")
        assert cmd.data_in_length == 0x012345

    def test_parse_hand_built(self) -> None:
        """mtx's data transfer query parses."""
        cmd = ReadElementStatus.from_bytes(bytes.fromhex("b8 14 0000 ffff 01 00ffff 00 00"))
        assert cmd.element_type == ElementType.DATA_TRANSFER
        assert cmd.voltag
        assert cmd.dvcid
        assert not cmd.curdata
        assert cmd.number_of_elements == 0xFFFF
        assert cmd.allocation_length == 0xFFFF

    @given(
        st.builds(
            ReadElementStatus,
            st.integers(0, 15),
            st.booleans(),
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF),
            st.booleans(),
            st.booleans(),
            st.integers(0, 0xFFFFFF),
            st.integers(0, 255),
        )
    )
    def test_round_trip(self, cmd: ReadElementStatus) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert ReadElementStatus.from_bytes(cmd.to_bytes()) == cmd

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("element_type", 16),
            ("starting_address", 0x10000),
            ("number_of_elements", -1),
            ("allocation_length", 1 << 24),
            ("control", 256),
        ],
    )
    def test_range(self, name: str, value: int) -> None:
        """Every field is range checked."""
        with pytest.raises(ValueError, match=name):
            ReadElementStatus(**{name: value})

    @pytest.mark.parametrize(("index", "bits"), [(1, 0x20), (6, 0x04), (10, 0x01)])
    def test_reserved(self, index: int, bits: int) -> None:
        """Reserved bits are refused."""
        cdb = bytearray(ReadElementStatus().to_bytes())
        cdb[index] |= bits
        with pytest.raises(DecodeError):
            ReadElementStatus.from_bytes(bytes(cdb))


class TestVolumeTag:
    """Volume tags: raw 32 bytes and the stripped barcode."""

    def test_barcode(self) -> None:
        """Trailing blanks and NULs are stripped; blank is None."""
        assert VolumeTag.from_bytes(tag("ABC123L6", 7)).barcode == "ABC123L6"
        assert VolumeTag.from_bytes(tag("ABC123L6", 7)).sequence_number == 7
        assert VolumeTag(b" " * 32).barcode is None
        assert VolumeTag(bytes(32)).barcode is None
        assert VolumeTag(b"XY" + bytes(30)).barcode == "XY"

    def test_raw_kept(self) -> None:
        """The identifier keeps every byte, including non-ASCII ones."""
        raw = b"\xffAB" + b" " * 29
        t = VolumeTag(raw)
        assert t.identifier == raw
        assert t.barcode is not None
        assert t.barcode.endswith("AB")

    def test_from_text(self) -> None:
        """from_text pads with blanks; too long or non-ASCII text is refused."""
        assert VolumeTag.from_text("A1").to_bytes() == tag("A1")
        with pytest.raises(ValueError, match="longer"):
            VolumeTag.from_text("X" * 33)
        with pytest.raises(UnicodeEncodeError):
            VolumeTag.from_text("é")

    def test_checks(self) -> None:
        """Identifier must be 32 bytes; sequence number 16 bits; parser needs 36 bytes."""
        with pytest.raises(ValueError, match="identifier"):
            VolumeTag(b"short")
        with pytest.raises(ValueError, match="sequence_number"):
            VolumeTag(bytes(32), 0x10000)
        with pytest.raises(DecodeError):
            VolumeTag.from_bytes(bytes(35))


class TestDeviceIdentifier:
    """The DVCID block: code set, type, length, variable identifier."""

    def test_layout(self) -> None:
        """Header bytes then the identifier."""
        dev = DeviceIdentifier(code_set=2, designator_type=1, identifier=b"IBM     ULT3580")
        assert dev.to_bytes() == bytes((2, 1, 0, 15)) + b"IBM     ULT3580"
        assert DeviceIdentifier.from_bytes(dev.to_bytes()) == dev
        assert dev.text == "IBM     ULT3580"

    def test_length_lies(self) -> None:
        """A length past the buffer is a DecodeError."""
        with pytest.raises(DecodeError):
            DeviceIdentifier.from_bytes(bytes((2, 1, 0, 200)) + b"abc")

    def test_checks(self) -> None:
        """Range checks."""
        with pytest.raises(ValueError, match="code_set"):
            DeviceIdentifier(16, 0, b"")
        with pytest.raises(ValueError, match="identifier"):
            DeviceIdentifier(2, 0, bytes(256))


def storage_descriptor(address: int, barcode: str | None, source: int | None) -> bytes:
    """A hand-built 52-byte storage descriptor with a primary tag."""
    flags = 0x09 if barcode else 0x08  # ACCESS, FULL
    b9 = 0x80 | 0x01 if source is not None else 0x00
    return (
        be(address, 2)
        + bytes((flags, 0, 0, 0, 0, 0, 0, b9))
        + be(source or 0, 2)
        + tag(barcode or "")
        + bytes(4)
    )


class TestParseHandBuilt:
    """Element status data built byte by byte from the SMC-3 layout."""

    def test_storage_page(self) -> None:
        """Two slots, one full with a barcode and a source, one empty."""
        descs = storage_descriptor(0x1000, "VOL001L6", 0x0100) + storage_descriptor(
            0x1001, None, None
        )
        data = header(0x1000, 2, 8 + 104) + page_header(2, 0x80, 52, 104) + descs
        es = ElementStatus.from_bytes(data)
        assert not es.truncated
        assert es.first_element_address == 0x1000
        assert es.number_of_elements == 2
        (page,) = es.pages
        assert page.type is ElementType.STORAGE
        assert page.pvoltag
        assert not page.avoltag
        full, empty = page.descriptors
        assert (full.address, full.full, full.access, full.source_valid) == (0x1000, 1, 1, 1)
        assert full.source == 0x0100
        assert full.medium_type == 1
        assert full.barcode == "VOL001L6"
        assert full.primary_tag is not None
        assert full.primary_tag.identifier.startswith(b"VOL001L6 ")
        assert (empty.address, empty.full, empty.barcode, empty.source) == (0x1001, 0, None, None)
        assert es.to_bytes() == data

    def test_data_transfer_with_dvcid(self) -> None:
        """A drive descriptor: ID/LU valid, LUN, bus address, except with ASC, device id."""
        dev = b"IBM     ULT3580-TD5     1013000655"
        desc = (
            be(0x0100, 2)
            + bytes((0x0D, 0, 0x3A, 0x00, 0x30 | 0x05, 0x07, 0, 0xC0))
            + be(0x1000, 2)
            + tag("VOL001L6", 1)
            + bytes((0x02, 0x01, 0, len(dev)))
            + dev
        )
        dlen = len(desc)
        data = header(0x100, 1, 8 + dlen) + page_header(4, 0x80, dlen, dlen) + desc
        (d,) = ElementStatus.from_bytes(data).descriptors()
        assert d.full
        assert d.except_
        assert d.access
        assert not d.impexp
        assert (d.asc, d.ascq) == (0x3A, 0x00)
        assert d.id_valid
        assert d.lu_valid
        assert d.lun == 5
        assert d.scsi_bus_address == 7
        assert d.source_valid
        assert d.invert
        assert d.source == 0x1000
        assert d.primary_tag is not None
        assert d.primary_tag.sequence_number == 1
        assert d.device_id is not None
        assert (d.device_id.code_set, d.device_id.designator_type) == (2, 1)
        assert d.device_id.identifier == dev
        assert ElementStatus.from_bytes(data).to_bytes() == data

    def test_import_export_flags(self) -> None:
        """ImpExp, ExEnab, InEnab, and both volume tags."""
        desc = (
            be(0x0010, 2)
            + bytes((0x3B, 0, 0, 0, 0, 0, 0, 0x08))
            + be(0, 2)
            + tag("PRI")
            + tag("ALT", 2)
        )
        data = header(0x10, 1, 8 + 84) + page_header(3, 0xC0, 84, 84) + desc
        (d,) = ElementStatus.from_bytes(data).descriptors()
        assert d.full
        assert d.impexp
        assert d.access
        assert d.exenab
        assert d.inenab
        assert d.ed
        assert not d.except_
        assert d.barcode == "PRI"
        assert d.alternate_tag is not None
        assert d.alternate_tag.barcode == "ALT"
        assert d.alternate_tag.sequence_number == 2

    def test_four_pages(self) -> None:
        """A response with every element type, each in its own page, no volume tags."""
        pages = b""
        for etype, address in ((1, 0x0001), (2, 0x1000), (3, 0x0010), (4, 0x0100)):
            desc = be(address, 2) + bytes(10)
            pages += page_header(etype, 0, 12, 12) + desc
        data = header(1, 4, len(pages)) + pages
        es = ElementStatus.from_bytes(data)
        assert [p.element_type for p in es.pages] == [1, 2, 3, 4]
        assert [d.address for d in es.descriptors()] == [1, 0x1000, 0x10, 0x100]
        assert [d.address for d in es.descriptors(ElementType.STORAGE)] == [0x1000]
        found = es.get(0x0100)
        assert found is not None
        assert found.address == 0x0100
        assert es.get(0x0101) is None
        assert es.to_bytes() == data

    def test_several_pages_of_one_type(self) -> None:
        """Storage spread over two pages is read in order."""
        p1 = page_header(2, 0x80, 52, 52) + storage_descriptor(0x1000, "A", None)
        p2 = page_header(2, 0x80, 52, 52) + storage_descriptor(0x1001, "B", None)
        es = ElementStatus.from_bytes(header(0x1000, 2, len(p1 + p2)) + p1 + p2)
        assert [d.barcode for d in es.descriptors(2)] == ["A", "B"]

    def test_vendor_bytes_kept(self) -> None:
        """Bytes after the standard fields are kept in ``extra`` and re-encoded."""
        desc = be(5, 2) + bytes(10) + b"\x00\x00\x00\x00VEND"
        data = header(5, 1, 8 + 20) + page_header(2, 0, 20, 20) + desc
        (d,) = ElementStatus.from_bytes(data).descriptors()
        assert d.device_id is None
        assert d.extra == b"\x00\x00\x00\x00VEND"
        assert ElementStatus.from_bytes(data).to_bytes() == data


class TestCutShort:
    """Answers cut by the allocation length keep every complete descriptor."""

    def full_answer(self, n: int = 5) -> bytes:
        descs = b"".join(storage_descriptor(0x1000 + i, f"V{i:05d}", None) for i in range(n))
        return header(0x1000, n, 8 + len(descs)) + page_header(2, 0x80, 52, len(descs)) + descs

    def test_every_cut(self) -> None:
        """Cut anywhere after the header: no failure, complete ones intact, truncated set."""
        data = self.full_answer()
        for cut in range(8, len(data)):
            es = ElementStatus.from_bytes(data[:cut])
            assert es.truncated, cut
            complete = max(0, (cut - 16) // 52)
            descs = list(es.descriptors())
            whole = [d for d in descs if not d.partial]
            assert [d.address for d in whole] == [0x1000 + i for i in range(complete)]
            assert [d.barcode for d in whole] == [f"V{i:05d}" for i in range(complete)]
            assert len(descs) - len(whole) <= 1

    def test_header_only(self) -> None:
        """An allocation length of 8 gives the counts and no pages."""
        es = ElementStatus.from_bytes(self.full_answer()[:8])
        assert es.truncated
        assert es.pages == ()
        assert es.number_of_elements == 5

    def test_short_header(self) -> None:
        """Fewer than 8 bytes is a DecodeError."""
        with pytest.raises(DecodeError):
            ElementStatus.from_bytes(b"\x00\x01\x00")

    def test_partial_re_encodes_in_place(self) -> None:
        """A partial descriptor without its tag re-encodes with a blank tag, same length."""
        data = self.full_answer(2)
        es = ElementStatus.from_bytes(data[: 16 + 52 + 20])
        assert es.truncated
        again = ElementStatus.from_bytes(es.to_bytes())
        first, second = again.descriptors()
        assert first.barcode == "V00000"
        assert second.address == 0x1001
        assert second.barcode is None
        assert not again.truncated

    def test_partial_needs_fixed_bytes(self) -> None:
        """A cut descriptor with fewer than 12 bytes is dropped, not invented."""
        data = self.full_answer(1)
        es = ElementStatus.from_bytes(data[: 16 + 11])
        assert list(es.descriptors()) == []
        es = ElementStatus.from_bytes(data[: 16 + 12])
        (d,) = es.descriptors()
        assert d.partial
        assert d.address == 0x1000
        assert d.primary_tag is None


class TestTgtdAnswer:
    """tgtd's READ ELEMENT STATUS answer, laid out from reference/tgt.md.

    tgtd announces a byte count of 8 + N * descriptor length (it forgets its page
    header), so it sends 8 bytes less than its headers announce; the header's first
    element address can be wrong. Its descriptor: address, status byte, ASC/ASCQ, byte 9
    SVALID + medium type, source; a blank-padded 32-byte barcode; 52 bytes with VOLTAG,
    86 with VOLTAG and DVCID.
    """

    def tgt_storage(self, address: int, barcode: str, source: int) -> bytes:
        code = barcode.encode().ljust(32, b" ")
        return (
            be(address, 2)
            + bytes((1, 0, 0, 0, 0, 0, 0, 0x80 | 1))
            + be(source, 2)
            + code
            + bytes(8)
        )

    def test_voltag_cut_last_descriptor(self) -> None:
        """The last descriptor arrives with 44 bytes: address, flags, source, barcode."""
        n = 3
        descs = b"".join(self.tgt_storage(1024 + i, f"B{i:06d}", 0x10 + i) for i in range(n))
        announced = 8 + n * 52
        full = header(1026, n, announced) + page_header(2, 0x80, 52, n * 52) + descs
        sent = full[:announced]  # tgtd's transfer length is its own byte count
        assert len(sent) == len(full) - 8
        es = ElementStatus.from_bytes(sent)
        assert es.truncated
        assert es.partial
        descs_out = list(es.descriptors())
        assert [d.address for d in descs_out] == [1024, 1025, 1026]
        assert [d.barcode for d in descs_out] == ["B000000", "B000001", "B000002"]
        assert [d.source for d in descs_out] == [0x10, 0x11, 0x12]
        assert all(d.full for d in descs_out)
        assert [d.partial for d in descs_out] == [False, False, True]

    def test_voltag_dvcid_drive(self) -> None:
        """A drive with DVCID: code set 2, type = peripheral type 1, 34-byte identifier."""
        ident = b"IBM     ULT3580-TD5     SN00000001"
        desc = (
            be(256, 2)
            + bytes((0, 0, 0x04, 0x01, 0, 0, 0, 0))
            + be(0, 2)
            + b" " * 32
            + bytes(4)
            + bytes((2, 1, 0, 34))
            + ident
        )
        assert len(desc) == 86
        first = desc
        second = be(257, 2) + desc[2:]
        announced = 8 + 2 * 86
        full = header(257, 2, announced) + page_header(4, 0x80, 86, 172) + first + second
        es = ElementStatus.from_bytes(full[:-8])
        d1, d2 = es.descriptors()
        assert d1.device_id is not None
        assert d1.device_id.identifier == ident
        assert d1.barcode is None
        assert (d1.asc, d1.ascq) == (4, 1)
        assert d2.partial
        assert d2.address == 257
        assert d2.device_id is None


def volume_tags() -> st.SearchStrategy[VolumeTag]:
    return st.builds(VolumeTag, st.binary(min_size=32, max_size=32), st.integers(0, 0xFFFF))


def device_ids() -> st.SearchStrategy[DeviceIdentifier]:
    return st.builds(
        DeviceIdentifier,
        st.integers(0, 15),
        st.integers(0, 15),
        st.binary(min_size=1, max_size=40),
        st.integers(0, 3),
        st.integers(0, 15),
        st.booleans(),
    )


@st.composite
def descriptors(draw: st.DrawFn, pv: bool, av: bool) -> ElementDescriptor:
    """Descriptors whose encoding parses back to themselves."""
    b = st.booleans()
    dev = draw(st.none() | device_ids())
    extra = b""
    if dev is not None:
        extra = draw(st.binary(max_size=8)).rstrip(b"\0")
    return ElementDescriptor(
        address=draw(st.integers(0, 0xFFFF)),
        full=draw(b),
        impexp=draw(b),
        except_=draw(b),
        access=draw(b),
        exenab=draw(b),
        inenab=draw(b),
        cmc=draw(b),
        oir=draw(b),
        asc=draw(st.integers(0, 255)),
        ascq=draw(st.integers(0, 255)),
        not_bus=draw(b),
        id_valid=draw(b),
        lu_valid=draw(b),
        lun=draw(st.integers(0, 7)),
        scsi_bus_address=draw(st.integers(0, 255)),
        source_valid=draw(b),
        invert=draw(b),
        ed=draw(b),
        medium_type=draw(st.integers(0, 7)),
        source_address=draw(st.integers(0, 0xFFFF)),
        primary_tag=draw(volume_tags()) if pv else None,
        alternate_tag=draw(volume_tags()) if av else None,
        device_id=dev,
        extra=extra,
    )


@st.composite
def pages(draw: st.DrawFn) -> ElementStatusPage:
    pv, av = draw(st.booleans()), draw(st.booleans())
    descs = draw(st.lists(descriptors(pv, av), max_size=4))
    return ElementStatusPage(draw(st.integers(1, 4)), descs, pv, av)


class TestRoundTrip:
    """Encoding and parsing are inverse."""

    @given(st.lists(pages(), min_size=1, max_size=3), st.data())
    def test_cut_anywhere(self, page_list: list[ElementStatusPage], data: st.DataObject) -> None:
        """A valid answer cut anywhere after its header parses; whole descriptors are kept."""
        full = ElementStatus(pages=page_list).to_bytes()
        cut = data.draw(st.integers(8, len(full)))
        es = ElementStatus.from_bytes(full[:cut])
        assert es.truncated == (cut < len(full))
        original = [d for p in page_list for d in p.descriptors]
        whole = [d for d in es.descriptors() if not d.partial]
        assert whole == original[: len(whole)]
        got = list(es.descriptors())
        assert len(got) - len(whole) <= 1
        if cut == len(full):
            assert whole == original

    @given(st.lists(pages(), max_size=4), st.integers(0, 0xFFFF))
    def test_objects(self, page_list: list[ElementStatusPage], first: int) -> None:
        """Objects -> bytes -> objects keeps every page and descriptor (and sizes agree)."""
        es = ElementStatus(first, pages=page_list)
        back = ElementStatus.from_bytes(es.to_bytes())
        assert not back.truncated
        assert back.number_of_elements == sum(len(p.descriptors) for p in page_list)
        for ours, theirs in zip(page_list, back.pages, strict=True):
            assert (theirs.element_type, theirs.pvoltag, theirs.avoltag) == (
                ours.element_type,
                ours.pvoltag,
                ours.avoltag,
            )
            assert theirs.descriptors == ours.descriptors
            assert [d.encoded_length for d in ours.descriptors] == [
                len(d.to_bytes()) for d in ours.descriptors
            ]
        assert back.to_bytes() == es.to_bytes()

    @given(pages(), st.integers(0, 16))
    def test_padding(self, page: ElementStatusPage, pad: int) -> None:
        """A longer descriptor length pads with zeros and parses back the same."""
        longer = ElementStatusPage(
            page.element_type,
            page.descriptors,
            page.pvoltag,
            page.avoltag,
            page.effective_descriptor_length + pad,
        )
        back = ElementStatus.from_bytes(ElementStatus(pages=[longer]).to_bytes())
        assert back.pages[0].descriptors == page.descriptors
        assert back.pages[0].descriptor_length == page.effective_descriptor_length + pad


class TestErrors:
    """Inconsistent data is a DecodeError; inconsistent objects a ValueError."""

    def test_descriptor_length_too_small(self) -> None:
        """A descriptor length below what the tags need."""
        data = header(0, 1, 8 + 20) + page_header(2, 0x80, 20, 20) + bytes(20)
        with pytest.raises(DecodeError, match="descriptor length"):
            ElementStatus.from_bytes(data)

    def test_not_a_multiple(self) -> None:
        """A page byte count that is not a multiple of the descriptor length."""
        data = header(0, 1, 8 + 13) + page_header(2, 0, 12, 13) + bytes(13)
        with pytest.raises(DecodeError, match="multiple"):
            ElementStatus.from_bytes(data)

    def test_tags_must_match_page(self) -> None:
        """A descriptor without a primary tag in a PVolTag page is refused."""
        with pytest.raises(ValueError, match="primary_tag"):
            ElementStatusPage(2, [ElementDescriptor(1)], pvoltag=True)

    def test_descriptor_length_below_descriptor(self) -> None:
        """A descriptor length shorter than a descriptor is refused."""
        with pytest.raises(ValueError, match="descriptor_length"):
            ElementStatusPage(2, [ElementDescriptor(1)], descriptor_length=8)

    def test_extra_trailing_zero(self) -> None:
        """extra may not end in padding."""
        with pytest.raises(ValueError, match="extra"):
            ElementDescriptor(1, extra=b"a\0")

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("address", 0x10000),
            ("asc", 256),
            ("lun", 8),
            ("medium_type", 8),
            ("source_address", -1),
        ],
    )
    def test_descriptor_ranges(self, name: str, value: int) -> None:
        """Descriptor fields are range checked."""
        kwargs = {"address": 1, name: value}
        with pytest.raises(ValueError, match=name):
            ElementDescriptor(**kwargs)  # type: ignore[arg-type]
