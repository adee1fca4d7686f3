"""READ ATTRIBUTE and MAM attributes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.attributes import (
    BARCODE,
    Attribute,
    AttributeFormat,
    AttributeIdList,
    AttributeList,
    MamAttribute,
    ReadAttribute,
    ReadAttributeAction,
)


def _attr(ident: int, flags: int, value: bytes) -> bytes:
    """An attribute laid out by hand (SPC-4 table 331)."""
    return ident.to_bytes(2, "big") + bytes([flags]) + len(value).to_bytes(2, "big") + value


class TestCdb:
    """The READ ATTRIBUTE CDB."""

    def test_layout(self) -> None:
        """8Ch: SA, element 2-3, volume 5, partition 7, first id 8-9, length 10-13, CACHE 14."""
        cdb = ReadAttribute(
            ReadAttributeAction.ATTRIBUTE_LIST,
            0x0806,
            partition=1,
            logical_volume=2,
            element_address=0x1234,
            cache=True,
            allocation_length=0x100,
        ).to_bytes()
        assert cdb == bytes([0x8C, 0x01, 0x12, 0x34, 0, 2, 0, 1, 0x08, 0x06, 0, 0, 1, 0, 1, 0])

    @given(
        st.integers(0, 31),
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.booleans(),
        st.integers(0, 2**32 - 1),
    )
    def test_round_trip(
        self, sa: int, first: int, part: int, vol: int, elem: int, cache: bool, alloc: int
    ) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = ReadAttribute(sa, first, part, vol, elem, cache, alloc)
        assert ReadAttribute.from_bytes(cmd.to_bytes()) == cmd

    def test_bad(self) -> None:
        """Reserved bits are DecodeErrors; ranges are checked."""
        with pytest.raises(DecodeError):
            ReadAttribute.from_bytes(bytes([0x8C, 0x20]) + bytes(14))
        with pytest.raises(DecodeError):
            ReadAttribute.from_bytes(bytes([0x8C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]))
        with pytest.raises(ValueError, match="first_attribute"):
            ReadAttribute(first_attribute=1 << 16)


class TestAttributes:
    """Attribute values against hand-made layouts."""

    def test_values(self) -> None:
        """Binary, ASCII and text attributes with the READ ONLY bit."""
        barcode = b"A00001L8".ljust(32, b" ")
        body = (
            _attr(0x0000, 0x80, (1500000).to_bytes(8, "big"))
            + _attr(0x0806, 0x01, barcode)
            + _attr(0x0803, 0x02, b"backup set\0\0")
            + _attr(0x1234, 0x00, b"\x01")
        )
        raw = len(body).to_bytes(4, "big") + body
        data = AttributeList.from_bytes(raw)
        remaining, code, label, vendor = data.attributes
        assert remaining.id is MamAttribute.REMAINING_CAPACITY_IN_PARTITION
        assert remaining.read_only
        assert remaining.format is AttributeFormat.BINARY
        assert remaining.as_int == 1500000
        assert code.id is BARCODE
        assert code.format is AttributeFormat.ASCII
        assert data.barcode == "A00001L8"
        assert label.text == "backup set"
        assert vendor.id == 0x1234
        assert data.to_bytes() == raw

    def test_builders(self) -> None:
        """Attribute.ascii pads with spaces; Attribute.binary checks the width."""
        a = Attribute.ascii(BARCODE, "CLN001L1", 32)
        assert a.to_bytes() == _attr(0x0806, 0x01, b"CLN001L1" + b" " * 24)
        assert Attribute.binary(0x0003, 7, 8, read_only=True).to_bytes() == _attr(
            3, 0x80, (7).to_bytes(8, "big")
        )
        with pytest.raises(ValueError, match="value"):
            Attribute.binary(0x0003, 256, 1)
        with pytest.raises(ValueError, match="text"):
            Attribute.ascii(BARCODE, "x" * 33, 32)
        with pytest.raises(ValueError, match="ASCII"):
            Attribute.ascii(BARCODE, "é", 32)

    def test_no_barcode(self) -> None:
        """Without attribute 0806h the barcode is None."""
        assert AttributeList().barcode is None

    def test_cut_and_overrun(self) -> None:
        """A list cut by the allocation length keeps whole attributes; a complete overrun fails."""
        data = AttributeList(tuple(Attribute.binary(i, i, 8) for i in range(4)))
        raw = data.to_bytes()
        cut = AttributeList.from_bytes(raw[: 4 + 13 * 2 + 3])
        assert [a.id for a in cut.attributes] == [0, 1]
        assert cut.available_data == 52
        bad = bytes([0, 0, 0, 6]) + _attr(1, 0, b"")[:5] + b"\x00"
        with pytest.raises(DecodeError):
            AttributeList.from_bytes(bytes([0, 0, 0, 5, 0, 1, 0, 0, 9]))
        with pytest.raises(DecodeError):
            AttributeList.from_bytes(bad)

    def test_id_list(self) -> None:
        """ATTRIBUTE LIST data: 16-bit identifiers."""
        raw = bytes([0, 0, 0, 4, 0x08, 0x06, 0x00, 0x00])
        ids = AttributeIdList.from_bytes(raw)
        assert ids.ids == (BARCODE, MamAttribute.REMAINING_CAPACITY_IN_PARTITION)
        assert ids.to_bytes() == raw


_attribute = st.builds(
    Attribute, st.integers(0, 0xFFFF), st.binary(max_size=40), st.integers(0, 3), st.booleans()
)


class TestProperties:
    """Round trips and arbitrary input."""

    @given(st.lists(_attribute, max_size=8))
    def test_round_trip(self, attrs: list[Attribute]) -> None:
        """from_bytes(to_bytes()) is the identity."""
        data = AttributeList(tuple(attrs))
        assert AttributeList.from_bytes(data.to_bytes()) == data

    @given(st.lists(st.integers(0, 0xFFFF), max_size=20))
    def test_id_round_trip(self, ids: list[int]) -> None:
        """Identifier lists round-trip."""
        data = AttributeIdList(tuple(ids))
        assert AttributeIdList.from_bytes(data.to_bytes()) == data

    @given(st.binary(max_size=200))
    def test_arbitrary(self, raw: bytes) -> None:
        """Arbitrary bytes parse or raise DecodeError."""
        for cls in (AttributeList, AttributeIdList, Attribute, ReadAttribute):
            with contextlib.suppress(DecodeError):
                cls.from_bytes(raw)  # type: ignore[attr-defined]
        with contextlib.suppress(DecodeError):
            for a in AttributeList.from_bytes(raw).attributes:
                _ = (a.text, a.as_int)
