"""Arbitrary input into every SMC and SSC codec.

Parsers given arbitrary bytes return a result or raise DecodeError, nothing else; lengths
inside the data that lie (byte counts, descriptor lengths, identifier lengths) must not
drive allocation: results are bounded by the buffer. Builders given a value that does not
fit raise ValueError naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi import changer, density, element_status, position, tape
from tapepath.scsi.changer_pages import DeviceCapabilitiesPage, ElementAddressAssignmentPage
from tapepath.scsi.element_status import ElementStatus
from tapepath.scsi.tape_pages import (
    DataCompressionPage,
    DeviceConfigurationPage,
    TapeDeviceParameter,
)

CDB_CLASSES: list[Any] = [
    changer.MoveMedium,
    changer.ExchangeMedium,
    changer.InitializeElementStatus,
    changer.InitializeElementStatusWithRange,
    changer.PositionToElement,
    changer.PreventAllowMediumRemoval,
    element_status.ReadElementStatus,
    tape.Read6,
    tape.Write6,
    tape.WriteFilemarks6,
    tape.Space6,
    tape.Space16,
    tape.Locate10,
    tape.Locate16,
    tape.Rewind,
    tape.LoadUnload,
    tape.ReadBlockLimits,
    tape.Erase,
    position.ReadPosition,
    density.ReportDensitySupport,
]

DATA_PARSERS: list[tuple[str, Callable[[bytes], object]]] = [
    ("ElementStatus", ElementStatus.from_bytes),
    ("ElementDescriptor", element_status.ElementDescriptor.from_bytes),
    (
        "ElementDescriptor+tags",
        lambda buf: element_status.ElementDescriptor.from_bytes(buf, pvoltag=True, avoltag=True),
    ),
    ("VolumeTag", element_status.VolumeTag.from_bytes),
    ("DeviceIdentifier", element_status.DeviceIdentifier.from_bytes),
    ("ElementAddressAssignmentPage", ElementAddressAssignmentPage.from_bytes),
    ("DeviceCapabilitiesPage", DeviceCapabilitiesPage.from_bytes),
    ("DataCompressionPage", DataCompressionPage.from_bytes),
    ("DeviceConfigurationPage", DeviceConfigurationPage.from_bytes),
    ("BlockLimits", tape.BlockLimits.from_bytes),
    ("MaximumLogicalObjectIdentifier", tape.MaximumLogicalObjectIdentifier.from_bytes),
    ("PositionShort", position.PositionShort.from_bytes),
    ("PositionLong", position.PositionLong.from_bytes),
    ("PositionExtended", position.PositionExtended.from_bytes),
    ("DensitySupport", density.DensitySupport.from_bytes),
    ("DensitySupport/medium", lambda buf: density.DensitySupport.from_bytes(buf, medium_type=True)),
]


def _accepts(parse: Callable[[bytes], object], buf: bytes) -> object | None:
    try:
        return parse(buf)
    except DecodeError:
        return None


class TestCdbParsers:
    """Every CDB parser on arbitrary bytes."""

    @pytest.mark.parametrize("cls", CDB_CLASSES, ids=lambda c: c.__name__)
    @given(data=st.data())
    def test_arbitrary(self, cls: Any, data: st.DataObject) -> None:
        """Arbitrary CDBs parse or raise DecodeError; what parses re-encodes exactly."""
        length = data.draw(st.sampled_from([6, 10, 12, 16, 0, 5, 17]))
        buf = bytearray(data.draw(st.binary(min_size=length, max_size=length)))
        if buf and data.draw(st.booleans()):
            buf[0] = cls.OPCODE
        result = _accepts(cls.from_bytes, bytes(buf))
        if result is not None:
            assert result.to_bytes() == bytes(buf)


class TestDataParsers:
    """Every data parser on arbitrary bytes."""

    @pytest.mark.parametrize(("name", "parse"), DATA_PARSERS, ids=[n for n, _ in DATA_PARSERS])
    @given(st.binary(max_size=600))
    def test_arbitrary(self, name: str, parse: Callable[[bytes], object], buf: bytes) -> None:
        """Only a result or DecodeError."""
        _accepts(parse, buf)


def _lying_header(byte_count: int, dlen: int, page_count: int, body: bytes) -> bytes:
    return (
        b"\x00\x00\xff\xff\x00"
        + byte_count.to_bytes(3, "big")
        + bytes((2, 0x80))
        + dlen.to_bytes(2, "big")
        + b"\x00"
        + page_count.to_bytes(3, "big")
        + body
    )


class TestElementStatusStructured:
    """Element status data with headers that lie about lengths."""

    @given(
        st.integers(0, 0xFFFFFF),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFFFF),
        st.binary(max_size=400),
    )
    def test_lying_lengths(self, count: int, dlen: int, pcount: int, body: bytes) -> None:
        """Huge counts never yield more descriptors than the bytes can hold."""
        buf = _lying_header(count, dlen, pcount, body)
        result = _accepts(ElementStatus.from_bytes, buf)
        if isinstance(result, ElementStatus):
            descs = list(result.descriptors())
            assert len(descs) <= max(0, len(buf) - 16) // 12 + 1
            if len(buf) < 8 + count:
                assert result.truncated

    @given(st.binary(max_size=300), st.integers(0, 300))
    def test_valid_answer_cut_anywhere(self, noise: bytes, cut: int) -> None:
        """A valid answer cut anywhere after its header never fails."""
        descs = b"".join(
            i.to_bytes(2, "big") + bytes((1,)) + bytes(9) + noise[:36].ljust(36, b" ")
            for i in range(4)
        )
        buf = _lying_header(8 + len(descs), 48, len(descs), descs)[: 8 + cut]
        result = ElementStatus.from_bytes(buf)
        assert all(d.address < 4 for d in result.descriptors())


BUILDERS: list[tuple[Any, dict[str, Any]]] = [
    *((cls, {}) for cls in CDB_CLASSES if cls not in (tape.Read6, tape.Write6)),
    (tape.Read6, {"transfer_length": 1}),
    (tape.Write6, {"transfer_length": 1}),
    (tape.BlockLimits, {"max_block_length": 1}),
    (tape.MaximumLogicalObjectIdentifier, {"value": 1}),
    (position.PositionShort, {}),
    (position.PositionLong, {}),
    (position.PositionExtended, {}),
    (density.DensityDescriptor, {"primary_code": 1}),
    (density.MediumTypeDescriptor, {"medium_type": 1}),
    (element_status.ElementDescriptor, {"address": 1}),
    (element_status.VolumeTag, {"identifier": bytes(32)}),
    (element_status.DeviceIdentifier, {"code_set": 2, "designator_type": 1, "identifier": b"x"}),
    (element_status.ElementStatusPage, {"element_type": 2}),
    (ElementStatus, {}),
    (ElementAddressAssignmentPage, {}),
    (DataCompressionPage, {}),
    (DeviceConfigurationPage, {}),
    (TapeDeviceParameter, {}),
]


SIGNED = {(tape.Space6, "count"), (tape.Space16, "count")}


def _fields(cls: Any, kind: str) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.init and f.type in (kind, f"{kind} | None")]


def _id(value: object) -> str | None:
    return getattr(value, "__name__", None)


class TestRangeChecks:
    """Every int field of every builder refuses what does not fit; every flag wants a bool."""

    @pytest.mark.parametrize(("cls", "base"), BUILDERS, ids=_id)
    def test_fields(self, cls: Any, base: dict[str, Any]) -> None:
        """Negative and too large ints, and ints for flags, raise ValueError naming the field."""
        cls(**base)  # the base arguments are valid
        ints, flags = _fields(cls, "int"), _fields(cls, "bool")
        assert ints or flags
        for name in ints:
            values = [-(1 << 70), 1 << 70] + ([] if (cls, name) in SIGNED else [-1])
            for value in values:
                with pytest.raises(ValueError, match=name):
                    cls(**{**base, name: value})
        for name in flags:
            with pytest.raises(ValueError, match=name):
                cls(**{**base, name: 1})
