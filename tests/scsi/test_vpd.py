"""VPD pages 00h, 80h and 83h."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.vpd import (
    Association,
    CodeSet,
    Designator,
    DesignatorType,
    DeviceIdentification,
    ProtocolIdentifier,
    SupportedVpdPages,
    UnitSerialNumber,
    VpdPage,
    parse_vpd,
)

UUID_BYTES = bytes(range(0x10, 0x20))

# Designation descriptors laid out by hand from SPC-4 7.8.6 (one per designator type).
HAND_MADE = {
    "vendor": bytes([0x02, 0x00, 0x00, 0x04]) + b"abcd",
    "t10": bytes([0x02, 0x01, 0x00, 18]) + b"IBM     " + b"0123456789",
    "eui64": bytes([0x01, 0x02, 0x00, 0x08]) + bytes.fromhex("0011223344556677"),
    "eui64_12": bytes([0x01, 0x02, 0x00, 12]) + bytes.fromhex("001122334455667788990011"),
    "eui64_16": bytes([0x01, 0x02, 0x00, 16]) + bytes(range(16)),
    "naa2": bytes([0x01, 0x03, 0x00, 0x08]) + bytes.fromhex("2000001122334455"),
    "naa3": bytes([0x01, 0x03, 0x00, 0x08]) + bytes.fromhex("3000001122334455"),
    "naa5": bytes([0x01, 0x03, 0x00, 0x08]) + bytes.fromhex("5005076312345678"),
    "naa6": bytes([0x01, 0x03, 0x00, 16]) + bytes.fromhex("6005076312345678") + bytes(8),
    "rtp": bytes([0x61, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02]),
    "tpg": bytes([0x01, 0x15, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01]),
    "lug": bytes([0x01, 0x06, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07]),
    "md5": bytes([0x01, 0x07, 0x00, 16]) + bytes(range(100, 116)),
    "name": bytes([0x53, 0xA8, 0x00, 24]) + b"iqn.2026-11.example:vtl\0",
    "proto_port": bytes([0x91, 0x99, 0x00, 0x08]) + bytes(8),
    "uuid": bytes([0x01, 0x0A, 0x00, 18, 0x10, 0x00]) + UUID_BYTES,
}


def _page83(*descs: bytes, pdt: int = 8) -> bytes:
    body = b"".join(descs)
    return bytes([pdt, 0x83]) + len(body).to_bytes(2, "big") + body


class TestDesignators:
    """Each designator type decodes from its hand-made layout."""

    def test_every_type(self) -> None:
        """Type, code set, association, PIV and protocol of each descriptor."""
        page = DeviceIdentification.from_bytes(_page83(*HAND_MADE.values()))
        types = [d.designator_type for d in page.designators]
        assert types == [0, 1, 2, 2, 2, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 0xA]
        assert all(isinstance(t, DesignatorType) for t in types)
        name = page.designators[13]
        assert name.code_set == CodeSet.UTF8
        assert name.association == Association.TARGET_DEVICE
        assert name.piv
        assert name.protocol_identifier == ProtocolIdentifier.ISCSI
        assert name.text == "iqn.2026-11.example:vtl"
        rtp = page.designators[9]
        assert rtp.association == Association.TARGET_PORT
        assert rtp.protocol_identifier == ProtocolIdentifier.SAS
        assert rtp.piv

    def test_values(self) -> None:
        """The decoded views of each type."""
        d = {k: Designator.from_bytes(v) for k, v in HAND_MADE.items()}
        assert d["t10"].t10_vendor == "IBM"
        assert d["t10"].text == "IBM     0123456789"
        assert [d[k].naa for k in ("naa2", "naa3", "naa5", "naa6")] == [2, 3, 5, 6]
        assert d["eui64"].naa is None
        assert len(d["eui64_12"].identifier) == 12
        assert d["rtp"].number == 2
        assert d["tpg"].number == 1
        assert d["lug"].number == 7
        assert d["md5"].number is None
        assert d["uuid"].uuid == uuid.UUID(bytes=UUID_BYTES)
        assert d["vendor"].uuid is None
        assert str(d["naa5"]) == "NAA:0x5005076312345678"

    @pytest.mark.parametrize("key", sorted(HAND_MADE))
    def test_exact_inverse(self, key: str) -> None:
        """Each descriptor re-encodes to its bytes."""
        assert Designator.from_bytes(HAND_MADE[key]).to_bytes() == HAND_MADE[key]

    def test_bad_number_length(self) -> None:
        """A relative target port designator that is not 4 bytes is a DecodeError."""
        d = Designator(DesignatorType.RELATIVE_TARGET_PORT, b"\x00\x01")
        with pytest.raises(DecodeError):
            _ = d.number

    def test_bad_uuid(self) -> None:
        """A UUID designator without UUID TYPE 1 is a DecodeError."""
        with pytest.raises(DecodeError):
            _ = Designator(DesignatorType.UUID, bytes(18)).uuid

    def test_ranges(self) -> None:
        """Fields that do not fit are refused by name."""
        with pytest.raises(ValueError, match="designator_type"):
            Designator(16, b"")
        with pytest.raises(ValueError, match="association"):
            Designator(3, b"", association=4)
        with pytest.raises(ValueError, match="identifier"):
            Designator(3, bytes(256))


class TestDeviceIdentification:
    """Page 83h and its helpers."""

    def test_lu_preference(self) -> None:
        """NAA beats EUI-64 beats SCSI name beats T10 vendor id; port designators ignored."""
        t10, eui, naa = HAND_MADE["t10"], HAND_MADE["eui64"], HAND_MADE["naa5"]
        name_lu = bytes([0x03, 0x08, 0, 8]) + b"naa.1234"
        page = DeviceIdentification.from_bytes(_page83(t10, name_lu, eui, naa))
        best = page.logical_unit_designator()
        assert best is not None
        assert best.designator_type == DesignatorType.NAA
        page = DeviceIdentification.from_bytes(_page83(t10, name_lu, eui))
        assert page.logical_unit_designator() == Designator.from_bytes(eui)
        page = DeviceIdentification.from_bytes(_page83(t10, name_lu))
        best = page.logical_unit_designator()
        assert best is not None
        assert best.designator_type == DesignatorType.SCSI_NAME_STRING
        page = DeviceIdentification.from_bytes(_page83(t10))
        best = page.logical_unit_designator()
        assert best is not None
        assert best.t10_vendor == "IBM"
        naa_port = bytes([0x01, 0x13, 0, 8]) + bytes(8)  # NAA for the target port
        assert DeviceIdentification.from_bytes(_page83(naa_port)).logical_unit_designator() is None

    def test_longest_naa(self) -> None:
        """Among NAA designators the 16-byte one wins."""
        page = DeviceIdentification.from_bytes(_page83(HAND_MADE["naa5"], HAND_MADE["naa6"]))
        best = page.logical_unit_designator()
        assert best is not None
        assert best.naa == 6

    def test_port_helpers(self) -> None:
        """Relative target port and target port group of the answering port."""
        page = DeviceIdentification.from_bytes(_page83(HAND_MADE["rtp"], HAND_MADE["tpg"]))
        assert page.relative_target_port() == 2
        assert page.target_port_group() == 1
        empty = DeviceIdentification.from_bytes(_page83())
        assert empty.relative_target_port() is None
        assert empty.target_port_group() is None

    def test_header(self) -> None:
        """Qualifier and device type come from byte 0."""
        page = DeviceIdentification.from_bytes(_page83(pdt=0x21))
        assert page.peripheral_qualifier == 1
        assert page.peripheral_device_type == 1

    def test_descriptor_past_end(self) -> None:
        """A descriptor whose length runs past the page is a DecodeError."""
        bad = bytes([0x01, 0x03, 0x00, 0x10]) + bytes(8)
        with pytest.raises(DecodeError):
            DeviceIdentification.from_bytes(_page83(bad))

    def test_page_length_past_buffer(self) -> None:
        """A page length beyond the buffer is a DecodeError giving the needed length."""
        raw = _page83(HAND_MADE["naa5"])
        with pytest.raises(DecodeError, match="allocation length of at least 16"):
            DeviceIdentification.from_bytes(raw[:10])

    def test_wrong_page(self) -> None:
        """Page 80h data is not page 83h."""
        with pytest.raises(DecodeError):
            DeviceIdentification.from_bytes(bytes([8, 0x80, 0, 0]))


class TestOtherPages:
    """Pages 00h, 80h, unknown pages and parse_vpd."""

    def test_supported(self) -> None:
        """Page 00h lists page codes."""
        raw = bytes([0x01, 0x00, 0x00, 0x04, 0x00, 0x80, 0x83, 0xB0])
        page = SupportedVpdPages.from_bytes(raw)
        assert page.pages == (0x00, 0x80, 0x83, 0xB0)
        assert page.peripheral_device_type == 1
        assert page.to_bytes() == raw

    def test_serial(self) -> None:
        """Page 80h keeps the raw serial and strips the text."""
        raw = bytes([0x08, 0x80, 0x00, 0x0C]) + b"  1013000123"
        page = UnitSerialNumber.from_bytes(raw)
        assert page.serial_number == "1013000123"
        assert page.serial_raw == b"  1013000123"
        assert page.to_bytes() == raw
        assert UnitSerialNumber("ABC").serial_raw == b"ABC"

    def test_parse_vpd(self) -> None:
        """parse_vpd picks the class by page code."""
        assert isinstance(parse_vpd(bytes([0, 0, 0, 1, 0])), SupportedVpdPages)
        assert isinstance(parse_vpd(bytes([0, 0x80, 0, 0])), UnitSerialNumber)
        assert isinstance(parse_vpd(_page83()), DeviceIdentification)
        other = parse_vpd(bytes([0, 0xB0, 0, 2, 9, 9]))
        assert isinstance(other, VpdPage)
        assert other.page_code == 0xB0
        assert other.data == b"\t\t"

    def test_page_too_big(self) -> None:
        """A payload over 65535 bytes does not encode."""
        with pytest.raises(ValueError, match="do not fit"):
            VpdPage(0xC0, bytes(0x10000)).to_bytes()


_designator = st.builds(
    Designator,
    designator_type=st.integers(0, 15),
    identifier=st.binary(max_size=64),
    code_set=st.integers(0, 15),
    association=st.integers(0, 3),
    protocol_identifier=st.integers(0, 15),
    piv=st.booleans(),
)


class TestVpdProperties:
    """Round trips and arbitrary input."""

    @given(st.lists(_designator, max_size=8), st.integers(0, 7), st.integers(0, 31))
    def test_83_round_trip(self, ds: list[Designator], pq: int, pdt: int) -> None:
        """Page 83h round-trips."""
        page = DeviceIdentification(tuple(ds), pq, pdt)
        assert DeviceIdentification.from_bytes(page.to_bytes()) == page

    @given(st.lists(st.integers(0, 255), max_size=40), st.binary(max_size=40))
    def test_00_80_round_trip(self, pages: list[int], serial: bytes) -> None:
        """Pages 00h and 80h round-trip."""
        p0 = SupportedVpdPages(tuple(pages))
        assert SupportedVpdPages.from_bytes(p0.to_bytes()) == p0
        p80 = UnitSerialNumber(serial)
        assert UnitSerialNumber.from_bytes(p80.to_bytes()) == p80

    @given(st.binary(max_size=300))
    def test_parse_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError, including the designator views."""
        try:
            page = parse_vpd(raw)
        except DecodeError:
            return
        if isinstance(page, DeviceIdentification):
            for d in page.designators:
                str(d)
                with contextlib.suppress(DecodeError):
                    _ = (d.number, d.uuid, d.naa, d.text, d.t10_vendor)
            page.logical_unit_designator()

    @given(st.integers(0, 0xFFFF))
    def test_length_field_beyond_buffer(self, length: int) -> None:
        """A huge page length with a short buffer is a DecodeError, not an allocation."""
        raw = bytes([0, 0x83]) + length.to_bytes(2, "big")
        if length:
            with pytest.raises(DecodeError):
                parse_vpd(raw)


class TestDesignatorBuilders:
    """The convenience constructors produce the hand-made layouts."""

    def test_relative_target_port(self) -> None:
        """Relative target port 2 over SAS matches the hand-made descriptor."""
        assert (
            Designator.of_relative_target_port(2, ProtocolIdentifier.SAS).to_bytes()
            == HAND_MADE["rtp"]
        )
        plain = Designator.of_relative_target_port(3)
        assert not plain.piv
        assert plain.number == 3

    def test_target_port_group(self) -> None:
        """Target port group 1 matches the hand-made descriptor."""
        assert Designator.of_target_port_group(1).to_bytes() == HAND_MADE["tpg"]

    def test_scsi_name(self) -> None:
        """An iSCSI target name matches the hand-made descriptor."""
        assert Designator.of_scsi_name("iqn.2026-11.example:vtl").to_bytes() == HAND_MADE["name"]

    def test_ranges(self) -> None:
        """Values over 16 bits are refused by name."""
        with pytest.raises(ValueError, match="port"):
            Designator.of_relative_target_port(1 << 16)
        with pytest.raises(ValueError, match="group"):
            Designator.of_target_port_group(-1)
