"""Every SPC parser against arbitrary bytes and against lying length fields."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi import (
    alua,
    attributes,
    cdb,
    inquiry,
    log,
    luns,
    mode,
    opcodes,
    reservations,
    vpd,
)

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "RequestSense": cdb.RequestSense.from_bytes,
    "Inquiry": inquiry.Inquiry.from_bytes,
    "StandardInquiry": inquiry.StandardInquiry.from_bytes,
    "parse_vpd": vpd.parse_vpd,
    "SupportedVpdPages": vpd.SupportedVpdPages.from_bytes,
    "UnitSerialNumber": vpd.UnitSerialNumber.from_bytes,
    "DeviceIdentification": vpd.DeviceIdentification.from_bytes,
    "Designator": vpd.Designator.from_bytes,
    "ReportLuns": luns.ReportLuns.from_bytes,
    "LunList": luns.LunList.from_bytes,
    "ModeSense6": mode.ModeSense6.from_bytes,
    "ModeSense10": mode.ModeSense10.from_bytes,
    "ModeSelect6": mode.ModeSelect6.from_bytes,
    "ModeSelect10": mode.ModeSelect10.from_bytes,
    "ModeParameters6": mode.ModeParameters.from_bytes,
    "ModeParameters10": lambda b: mode.ModeParameters.from_bytes(b, ten_byte=True),
    "ModePage": mode.ModePage.from_bytes,
    "LogSense": log.LogSense.from_bytes,
    "LogPage": log.LogPage.from_bytes,
    "LogParameter": log.LogParameter.from_bytes,
    "TapeAlert": log.TapeAlert.from_bytes,
    "PersistentReserveIn": reservations.PersistentReserveIn.from_bytes,
    "PersistentReserveOut": reservations.PersistentReserveOut.from_bytes,
    "ReadKeys": reservations.ReadKeys.from_bytes,
    "ReadReservation": reservations.ReadReservation.from_bytes,
    "ReportCapabilities": reservations.ReportCapabilities.from_bytes,
    "ReadFullStatus": reservations.ReadFullStatus.from_bytes,
    "PrOutParameters": reservations.PrOutParameters.from_bytes,
    "RegisterAndMoveParameters": reservations.RegisterAndMoveParameters.from_bytes,
    "TransportId": reservations.TransportId.from_bytes,
    "ReportTargetPortGroups": alua.ReportTargetPortGroups.from_bytes,
    "SetTargetPortGroups": alua.SetTargetPortGroups.from_bytes,
    "TargetPortGroups": alua.TargetPortGroups.from_bytes,
    "StpgParameters": alua.StpgParameters.from_bytes,
    "ReportSupportedOpcodes": opcodes.ReportSupportedOpcodes.from_bytes,
    "SupportedOpcodes": opcodes.SupportedOpcodes.from_bytes,
    "OneCommandSupport": opcodes.OneCommandSupport.from_bytes,
    "CommandTimeouts": opcodes.CommandTimeouts.from_bytes,
    "ReadAttribute": attributes.ReadAttribute.from_bytes,
    "AttributeList": attributes.AttributeList.from_bytes,
    "AttributeIdList": attributes.AttributeIdList.from_bytes,
    "Attribute": attributes.Attribute.from_bytes,
}

# Headers whose length fields claim far more than follows (each ends the buffer).
LYING_HEADERS = [
    b"\x00\x83\xff\xff",  # VPD page length 65535
    b"\xff\xff\xff\xff" + bytes(4),  # LUN list / PR IN / RTPG / opcodes / attributes
    b"\x00\x00\x00\x00\xff\xff\xff\xff",  # PR IN additional length
    b"\xff\x00\x00\xf8",  # mode (6) lengths
    b"\xff\xff\x00\x00\x00\x00\xff\xf0",  # mode (10) lengths
    b"\x2e\x00\xff\xff\x00\x01\x00\xff",  # log page with a parameter claiming 255 bytes
    b"\x00\x00\x00\x10\x00\x00\x00\xff",  # a TPG descriptor claiming 255 ports
    bytes(24) + b"\xff\xff\xff\xff",  # PR OUT SPEC_I_PT list length
]


def _parse(name: str, raw: bytes) -> object | None:
    try:
        return PARSERS[name](raw)
    except DecodeError:
        return None


@pytest.mark.parametrize("name", sorted(PARSERS))
class TestArbitraryBytes:
    """Each parser gives a value or DecodeError, nothing else."""

    @settings(max_examples=100)
    @given(raw=st.binary(max_size=120))
    def test_arbitrary(self, name: str, raw: bytes) -> None:
        """Arbitrary bytes: a result or DecodeError."""
        result = _parse(name, raw)
        to_bytes = getattr(result, "to_bytes", None)
        if to_bytes is not None and name not in ("ModeParameters6", "ModeParameters10"):
            assert isinstance(to_bytes(), bytes)

    @pytest.mark.parametrize("header", LYING_HEADERS)
    def test_length_beyond_buffer(self, name: str, header: bytes) -> None:
        """A length field far beyond the buffer allocates nothing in proportion to it."""
        tracemalloc.start()
        try:
            _parse(name, header)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024


CDB_CLASSES: list[Any] = [
    cdb.RequestSense,
    cdb.TestUnitReady,
    inquiry.Inquiry,
    luns.ReportLuns,
    mode.ModeSense6,
    mode.ModeSense10,
    mode.ModeSelect6,
    mode.ModeSelect10,
    log.LogSense,
    reservations.PersistentReserveIn,
    reservations.PersistentReserveOut,
    alua.ReportTargetPortGroups,
    alua.SetTargetPortGroups,
    opcodes.ReportSupportedOpcodes,
    attributes.ReadAttribute,
]
_BASE: dict[Any, dict[str, Any]] = {
    inquiry.Inquiry: {"evpd": True},
    reservations.PersistentReserveOut: {"service_action": 0},
}


def _field_maxima(cls: Any) -> list[Any]:
    """One instance per field, that field at its largest value (bools True)."""
    import attrs  # noqa: PLC0415

    base = cls(**_BASE.get(cls, {}))
    out = []
    for f in attrs.fields(cls):
        if isinstance(getattr(base, f.name), bool):
            out.append(attrs.evolve(base, **{f.name: True}))
            continue
        for bits in (64, 32, 24, 16, 8, 6, 5, 4, 3, 2, 1):
            try:
                out.append(attrs.evolve(base, **{f.name: (1 << bits) - 1}))
                break
            except ValueError:
                continue
        else:
            pytest.fail(f"{cls.__name__}.{f.name}: no value fits")
    return out


@pytest.mark.parametrize("cls", CDB_CLASSES, ids=lambda c: c.__name__)
class TestReservedBits:
    """Every CDB bit no field can set is reserved, and from_bytes refuses it."""

    def test_every_reserved_bit_refused(self, cls: Any) -> None:
        """Setting any reserved bit of the CDB makes from_bytes raise DecodeError."""
        instances = _field_maxima(cls)
        base = cls(**_BASE.get(cls, {})).to_bytes()
        used = bytearray(len(base))
        used[0] = 0xFF
        for inst in instances:
            for k, b in enumerate(inst.to_bytes()):
                used[k] |= b
        reserved = 0
        for k in range(len(base)):
            for bit in range(8):
                if used[k] >> bit & 1:
                    continue
                reserved += 1
                flipped = bytearray(base)
                flipped[k] |= 1 << bit
                with pytest.raises(DecodeError):
                    cls.from_bytes(bytes(flipped))
        assert reserved > 0
