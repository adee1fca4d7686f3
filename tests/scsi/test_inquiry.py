"""INQUIRY CDB and standard INQUIRY data."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.inquiry import Inquiry, PeripheralDeviceType, StandardInquiry


def _ibm_drive() -> bytes:
    """A tape drive's standard INQUIRY data laid out by hand from SPC-4 table 142."""
    buf = bytearray(96)
    buf[0] = 0x01  # qualifier 0, sequential-access device
    buf[1] = 0x80  # RMB
    buf[2] = 0x06  # SPC-4
    buf[3] = 0x12  # HISUP, response data format 2
    buf[4] = 96 - 5
    buf[5] = 0x18  # TPGS=01b (implicit ALUA), 3PC
    buf[6] = 0x50  # ENCSERV, MULTIP
    buf[7] = 0x02  # CMDQUE
    buf[8:16] = b"IBM     "
    buf[16:32] = b"ULT3580-TD8     "
    buf[32:36] = b"M4B0"
    buf[36:40] = b"\x01\x02\x03\x04"  # vendor specific
    buf[58:60] = b"\x04\x60"  # SPC-4
    buf[60:62] = b"\x02\x00"  # SSC-3 (hypothetical value)
    return bytes(buf)


class TestInquiryCdb:
    """The INQUIRY CDB."""

    def test_layout(self) -> None:
        """SPC: 12h, EVPD byte 1 bit 0, page code byte 2, 16-bit allocation length."""
        assert Inquiry(evpd=True, page_code=0x83, allocation_length=0x1234).to_bytes() == bytes(
            [0x12, 0x01, 0x83, 0x12, 0x34, 0x00]
        )

    def test_page_without_evpd(self) -> None:
        """A page code without EVPD is refused both ways."""
        with pytest.raises(ValueError, match="page_code"):
            Inquiry(page_code=0x80)
        with pytest.raises(DecodeError):
            Inquiry.from_bytes(bytes([0x12, 0, 0x80, 0, 96, 0]))

    def test_cmddt_refused(self) -> None:
        """The obsolete CMDDT bit is a reserved bit now."""
        with pytest.raises(DecodeError):
            Inquiry.from_bytes(bytes([0x12, 0x02, 0, 0, 96, 0]))

    @pytest.mark.parametrize(
        ("name", "value"), [("allocation_length", 1 << 16), ("page_code", 256)]
    )
    def test_ranges(self, name: str, value: int) -> None:
        """Fields that do not fit are refused by name."""
        with pytest.raises(ValueError, match=name):
            Inquiry(evpd=True, **{name: value})

    @given(st.booleans(), st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 255))
    def test_round_trip(self, evpd: bool, page: int, alloc: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = Inquiry(evpd, page if evpd else 0, alloc, control)
        assert Inquiry.from_bytes(cmd.to_bytes()) == cmd
        assert cmd.data_in_length == alloc


class TestStandardInquiryFields:
    """Fields decoded from a hand-made layout."""

    def test_drive(self) -> None:
        """Every field of the hand-made tape drive data."""
        inq = StandardInquiry.from_bytes(_ibm_drive())
        assert inq.peripheral_qualifier == 0
        assert inq.peripheral_device_type == PeripheralDeviceType.SEQUENTIAL_ACCESS
        assert inq.rmb
        assert not inq.lu_cong
        assert inq.version == 6
        assert inq.hisup
        assert not inq.normaca
        assert inq.response_data_format == 2
        assert inq.tpgs == 1
        assert inq.three_pc
        assert not inq.sccs
        assert not inq.acc
        assert not inq.protect
        assert inq.encserv
        assert inq.multip
        assert not inq.vs1
        assert inq.cmdque
        assert not inq.vs2
        assert inq.vendor == "IBM"
        assert inq.vendor_raw == b"IBM     "
        assert inq.product == "ULT3580-TD8"
        assert inq.revision == "M4B0"
        assert inq.vendor_specific == b"\x01\x02\x03\x04"
        assert inq.version_descriptors == (0x0460, 0x0200)
        assert inq.additional_length == 91

    def test_exact_inverse(self) -> None:
        """to_bytes() gives back the device's bytes."""
        raw = _ibm_drive()
        assert StandardInquiry.from_bytes(raw).to_bytes() == raw

    def test_all_flags_set(self) -> None:
        """Every bit of bytes 5-7 lands in its own field."""
        buf = bytearray(36)
        buf[0], buf[1], buf[3], buf[4] = 0xE8, 0xC0, 0x3F, 31
        buf[5], buf[6], buf[7] = 0xF9, 0x70, 0x03
        inq = StandardInquiry.from_bytes(bytes(buf))
        assert inq.peripheral_qualifier == 7
        assert inq.peripheral_device_type == 8
        assert inq.rmb
        assert inq.lu_cong
        assert inq.normaca
        assert inq.hisup
        assert inq.response_data_format == 0xF
        assert inq.sccs
        assert inq.acc
        assert inq.tpgs == 3
        assert inq.three_pc
        assert inq.protect
        assert inq.encserv
        assert inq.vs1
        assert inq.multip
        assert inq.cmdque
        assert inq.vs2

    def test_obsolete_bits_ignored(self) -> None:
        """Obsolete bits (BQUE, MCHNGR, ADDR16, RELADR, SYNC ...) do not leak into fields."""
        buf = bytearray(36)
        buf[3], buf[4], buf[6], buf[7] = 0xC2, 31, 0x8F, 0xFE
        inq = StandardInquiry.from_bytes(bytes(buf))
        assert not (inq.encserv)
        assert not (inq.vs1)
        assert not (inq.multip)
        assert not (inq.vs2)
        assert not (inq.normaca)
        assert inq.cmdque
        assert inq.response_data_format == 2

    def test_truncated(self) -> None:
        """Data cut by a small allocation length parses what is there."""
        inq = StandardInquiry.from_bytes(_ibm_drive()[:20])
        assert inq.vendor == "IBM"
        assert inq.product == "ULT3"
        assert inq.additional_length == 91
        assert inq.version_descriptors == ()

    def test_unknown_device_type_stays_int(self) -> None:
        """A device type the enum does not know stays a plain int."""
        inq = StandardInquiry.from_bytes(bytes([0x0A, 0, 6, 2, 31]) + bytes(31))
        assert inq.peripheral_device_type == 0x0A
        assert not isinstance(inq.peripheral_device_type, PeripheralDeviceType)

    def test_short(self) -> None:
        """Fewer than 5 bytes is a DecodeError."""
        with pytest.raises(DecodeError):
            StandardInquiry.from_bytes(b"\x01\x80\x06\x02")


class TestStandardInquiryBuild:
    """Building standard data for the virtual library."""

    def test_defaults(self) -> None:
        """The default data is 36 bytes, SPC-4, format 2, padded identifiers."""
        raw = StandardInquiry(vendor_raw="TAPEPATH", product_raw="VTL").to_bytes()
        assert len(raw) == 36
        assert raw[2] == 6
        assert raw[3] == 2
        assert raw[4] == 31
        assert raw[8:16] == b"TAPEPATH"
        assert raw[16:32] == b"VTL" + b" " * 13

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("peripheral_qualifier", 8),
            ("peripheral_device_type", 32),
            ("tpgs", 4),
            ("version", 256),
            ("response_data_format", 16),
            ("vendor_raw", "TOO-LONG-VENDOR"),
            ("product_raw", "X" * 17),
            ("revision_raw", "12345"),
            ("vendor_specific", b"x" * 21),
            ("clocking", 4),
        ],
    )
    def test_ranges(self, name: str, value: object) -> None:
        """Values that do not fit name their field."""
        with pytest.raises(ValueError, match=name):
            StandardInquiry(**{name: value})  # type: ignore[arg-type]

    def test_version_descriptor_count(self) -> None:
        """At most eight version descriptors fit."""
        with pytest.raises(ValueError, match="version_descriptors"):
            StandardInquiry(version_descriptors=tuple(range(9)))

    def test_additional_length_too_small(self) -> None:
        """An explicit additional length shorter than the fields is refused."""
        with pytest.raises(ValueError, match="additional_length"):
            StandardInquiry(version_descriptors=(0x460,), additional_length=31)

    def test_explicit_additional_length_pads(self) -> None:
        """An explicit additional length pads with zeros."""
        raw = StandardInquiry(additional_length=91).to_bytes()
        assert len(raw) == 96
        assert raw[4] == 91
        assert not any(raw[36:])


_vs = st.binary(max_size=20)


@st.composite
def inquiries(draw: st.DrawFn) -> StandardInquiry:
    """Arbitrary valid standard INQUIRY data."""
    descriptors = draw(st.lists(st.integers(0, 0xFFFF), max_size=8))
    while descriptors and descriptors[-1] == 0:
        descriptors.pop()
    tail = draw(st.binary(max_size=40))
    byte56 = draw(st.tuples(st.integers(0, 3), st.booleans(), st.booleans()))
    later = bool(descriptors or tail or any(byte56))
    vs = draw(_vs)
    if later:
        vs = vs.rstrip(b"\0")
    return StandardInquiry(
        peripheral_qualifier=draw(st.integers(0, 7)),
        peripheral_device_type=draw(st.integers(0, 31)),
        rmb=draw(st.booleans()),
        lu_cong=draw(st.booleans()),
        version=draw(st.integers(0, 255)),
        normaca=draw(st.booleans()),
        hisup=draw(st.booleans()),
        response_data_format=draw(st.integers(0, 15)),
        sccs=draw(st.booleans()),
        acc=draw(st.booleans()),
        tpgs=draw(st.integers(0, 3)),
        three_pc=draw(st.booleans()),
        protect=draw(st.booleans()),
        encserv=draw(st.booleans()),
        vs1=draw(st.booleans()),
        multip=draw(st.booleans()),
        cmdque=draw(st.booleans()),
        vs2=draw(st.booleans()),
        vendor_raw=draw(st.binary(min_size=8, max_size=8)),
        product_raw=draw(st.binary(min_size=16, max_size=16)),
        revision_raw=draw(st.binary(min_size=4, max_size=4)),
        vendor_specific=vs,
        clocking=byte56[0],
        qas=byte56[1],
        ius=byte56[2],
        version_descriptors=tuple(descriptors),
        vendor_specific_tail=tail,
    )


class TestStandardInquiryProperties:
    """Round trips and arbitrary input."""

    @given(inquiries())
    def test_round_trip(self, inq: StandardInquiry) -> None:
        """from_bytes(to_bytes()) is the identity; and the bytes are stable."""
        raw = inq.to_bytes()
        back = StandardInquiry.from_bytes(raw)
        assert back == inq
        assert back.to_bytes() == raw
        assert raw[4] == len(raw) - 5

    @given(st.binary(max_size=300))
    def test_parse_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError, and re-encode when they parse."""
        try:
            inq = StandardInquiry.from_bytes(raw)
        except DecodeError:
            return
        assert len(inq.to_bytes()) >= 36

    @given(st.binary(max_size=12))
    def test_cdb_arbitrary(self, raw: bytes) -> None:
        """Arbitrary CDB bytes parse or raise DecodeError."""
        with contextlib.suppress(DecodeError):
            Inquiry.from_bytes(raw)
