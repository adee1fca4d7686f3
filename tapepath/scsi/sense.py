"""Sense data (SPC-5 4.4): decoding, the sense-key-specific variants, and encoders.

:func:`decode_sense` reads fixed (70h/71h) and descriptor (72h/73h) sense data. It is
bounded by the buffer (the ADDITIONAL SENSE LENGTH may lie either way), keeps unknown
descriptor types raw, and raises :class:`~tapepath.errors.DecodeError` only for bytes it
cannot use at all (empty, a response code that is not sense data, too short to hold
the sense key). :func:`fixed_sense` and :func:`descriptor_sense` build sense data for the
virtual library and the tests; ``decode_sense(fixed_sense(...))`` gives back what went in.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_flag, check_uint, uint_field
from tapepath.scsi.asc import asc_description

__all__ = [
    "ActualRetryCount",
    "AtaStatusReturn",
    "BlockCommandsDescriptor",
    "CommandSpecificDescriptor",
    "Descriptor",
    "DeviceDesignationDescriptor",
    "DirectAccessBlockDescriptor",
    "FieldPointer",
    "ForwardedSenseDescriptor",
    "FruDescriptor",
    "InformationDescriptor",
    "MicrocodeActivationDescriptor",
    "ProgressIndication",
    "ProgressIndicationDescriptor",
    "RawSenseKeySpecific",
    "SegmentPointer",
    "Sense",
    "SenseKey",
    "SenseKeySpecific",
    "SenseKeySpecificDescriptor",
    "StreamCommandsDescriptor",
    "UnitAttentionQueueOverflow",
    "UnknownDescriptor",
    "UserDataSegmentReferral",
    "decode_sense",
    "decode_sks",
    "descriptor_sense",
    "fixed_sense",
]


class SenseKey(enum.IntEnum):
    """The sense key (SPC-5 table 49). Every 4-bit value has a name."""

    NO_SENSE = 0x0
    RECOVERED_ERROR = 0x1
    NOT_READY = 0x2
    MEDIUM_ERROR = 0x3
    HARDWARE_ERROR = 0x4
    ILLEGAL_REQUEST = 0x5
    UNIT_ATTENTION = 0x6
    DATA_PROTECT = 0x7
    BLANK_CHECK = 0x8
    VENDOR_SPECIFIC = 0x9
    COPY_ABORTED = 0xA
    ABORTED_COMMAND = 0xB
    EQUAL = 0xC
    """Obsolete (SPC-2 and earlier: a SEARCH DATA command found equal data)."""
    VOLUME_OVERFLOW = 0xD
    MISCOMPARE = 0xE
    COMPLETED = 0xF

    @property
    def label(self) -> str:
        """The name as written in the standard, e.g. ``"NOT READY"``."""
        return self.name.replace("_", " ")


# --------------------------------------------------------------------------------------
# Sense-key-specific data (SPC-5 4.4.2.x): three bytes, SKSV in bit 7 of the first.


@frozen
class FieldPointer:
    """ILLEGAL REQUEST: which CDB or parameter-list byte (and bit) is wrong.

    Attributes:
        cdb: True when the error is in the CDB (C/D bit), False for the parameter data.
        bit_pointer: the bit (0..7), meaningful when ``bpv`` is set.
        bpv: the bit pointer is valid.
        field_pointer: the byte offset of the field in error.
    """

    cdb: bool = field(validator=lambda i, a, v: check_flag(a.name, v))
    bpv: bool = field(default=False, validator=lambda i, a, v: check_flag(a.name, v))
    bit_pointer: int = field(default=0, validator=uint_field(3))
    field_pointer: int = field(default=0, validator=uint_field(16))

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        b0 = 0x80 | (0x40 if self.cdb else 0) | (0x08 if self.bpv else 0) | self.bit_pointer
        return bytes((b0,)) + self.field_pointer.to_bytes(2, "big")


@frozen
class ActualRetryCount:
    """RECOVERED ERROR, MEDIUM ERROR, HARDWARE ERROR: retries the device made."""

    count: int = field(validator=uint_field(16))

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        return b"\x80" + self.count.to_bytes(2, "big")


@frozen
class ProgressIndication:
    """NO SENSE, NOT READY: how far a long operation is (``progress`` / 65536)."""

    progress: int = field(validator=uint_field(16))

    @property
    def fraction(self) -> float:
        """Progress as a fraction in [0, 1)."""
        return self.progress / 65536

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        return b"\x80" + self.progress.to_bytes(2, "big")


@frozen
class SegmentPointer:
    """COPY ABORTED: where in the EXTENDED COPY parameter list the error is.

    Attributes:
        sd: the pointer is relative to the segment descriptor (SD bit), else to the
            parameter list.
        bpv: the bit pointer is valid.
        bit_pointer: the bit (0..7).
        field_pointer: the byte offset.
    """

    sd: bool = field(validator=lambda i, a, v: check_flag(a.name, v))
    bpv: bool = field(default=False, validator=lambda i, a, v: check_flag(a.name, v))
    bit_pointer: int = field(default=0, validator=uint_field(3))
    field_pointer: int = field(default=0, validator=uint_field(16))

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        b0 = 0x80 | (0x20 if self.sd else 0) | (0x08 if self.bpv else 0) | self.bit_pointer
        return bytes((b0,)) + self.field_pointer.to_bytes(2, "big")


@frozen
class UnitAttentionQueueOverflow:
    """UNIT ATTENTION: the unit attention condition queue overflowed (some were lost)."""

    overflow: bool = field(validator=lambda i, a, v: check_flag(a.name, v))

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        return bytes((0x80 | (0x01 if self.overflow else 0), 0, 0))


@frozen
class RawSenseKeySpecific:
    """Sense-key-specific data for a sense key whose format SPC-5 reserves (23 bits)."""

    value: int = field(validator=uint_field(23))

    def to_bytes(self) -> bytes:
        """The three SKS bytes (SKSV set)."""
        return (0x800000 | self.value).to_bytes(3, "big")


SenseKeySpecific: TypeAlias = (
    FieldPointer
    | ActualRetryCount
    | ProgressIndication
    | SegmentPointer
    | UnitAttentionQueueOverflow
    | RawSenseKeySpecific
)
"""Any sense-key-specific variant (usable with isinstance)."""


def decode_sks(sense_key: int, sks: Bytes) -> SenseKeySpecific | None:
    """Decode the three sense-key-specific bytes for ``sense_key``; None when SKSV is clear.

    Args:
        sense_key: the sense key the data belongs to (selects the format).
        sks: at least three bytes; only the first three are read.

    Raises:
        DecodeError: fewer than three bytes.
    """
    if len(sks) < 3:
        raise DecodeError(f"sense key specific: 3 bytes needed, got {len(sks)}")
    b0, value = sks[0], int.from_bytes(sks[1:3], "big")
    if not b0 & 0x80:
        return None
    if sense_key == SenseKey.ILLEGAL_REQUEST:
        return FieldPointer(bool(b0 & 0x40), bool(b0 & 0x08), b0 & 0x07, value)
    if sense_key in (SenseKey.RECOVERED_ERROR, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR):
        return ActualRetryCount(value)
    if sense_key in (SenseKey.NO_SENSE, SenseKey.NOT_READY):
        return ProgressIndication(value)
    if sense_key == SenseKey.COPY_ABORTED:
        return SegmentPointer(bool(b0 & 0x20), bool(b0 & 0x08), b0 & 0x07, value)
    if sense_key == SenseKey.UNIT_ATTENTION:
        return UnitAttentionQueueOverflow(bool(b0 & 0x01))
    return RawSenseKeySpecific(int.from_bytes(sks[:3], "big") & 0x7FFFFF)


# --------------------------------------------------------------------------------------
# Sense data descriptors (SPC-5 4.4.2).


@frozen
class InformationDescriptor:
    """Type 00h: the INFORMATION field (residual, failing LBA...), ``valid`` per its bit."""

    TYPE = 0x00
    information: int
    valid: bool = True


@frozen
class CommandSpecificDescriptor:
    """Type 01h: command-specific information."""

    TYPE = 0x01
    information: int


@frozen
class SenseKeySpecificDescriptor:
    """Type 02h: sense-key-specific data (None when its SKSV bit is clear)."""

    TYPE = 0x02
    sks: SenseKeySpecific | None


@frozen
class FruDescriptor:
    """Type 03h: field replaceable unit code."""

    TYPE = 0x03
    fru: int


@frozen
class StreamCommandsDescriptor:
    """Type 04h (SSC): FILEMARK, EOM and ILI."""

    TYPE = 0x04
    filemark: bool
    eom: bool
    ili: bool


@frozen
class BlockCommandsDescriptor:
    """Type 05h (SBC): ILI."""

    TYPE = 0x05
    ili: bool


@frozen
class AtaStatusReturn:
    """Type 09h (SAT): the ATA registers after an ATA PASS-THROUGH command."""

    TYPE = 0x09
    extend: bool
    error: int
    count: int
    lba: int
    device: int
    status: int


@frozen
class ProgressIndicationDescriptor:
    """Type 0Ah: progress of another operation (its sense key, ASC, ASCQ, progress)."""

    TYPE = 0x0A
    sense_key: int
    asc: int
    ascq: int
    progress: int

    @property
    def fraction(self) -> float:
        """Progress as a fraction in [0, 1)."""
        return self.progress / 65536


@frozen
class UserDataSegmentReferral:
    """Type 0Bh (SBC): user data segment referral; segments are kept raw."""

    TYPE = 0x0B
    not_all_r: bool
    data: bytes


@frozen
class ForwardedSenseDescriptor:
    """Type 0Ch: sense data forwarded from a copy source or destination."""

    TYPE = 0x0C
    fsdt: bool
    source: int
    status: int
    sense: bytes


@frozen
class DirectAccessBlockDescriptor:
    """Type 0Dh (SBC): VALID, ILI, SKS, FRU, INFORMATION and command-specific in one."""

    TYPE = 0x0D
    valid: bool
    ili: bool
    sks_bytes: bytes
    fru: int
    information: int
    command_specific: int


@frozen
class DeviceDesignationDescriptor:
    """Type 0Eh: a designation descriptor (VPD page 83h format), kept raw."""

    TYPE = 0x0E
    designator: bytes


@frozen
class MicrocodeActivationDescriptor:
    """Type 0Fh: seconds until the new microcode is active."""

    TYPE = 0x0F
    activation_time: int


@frozen
class UnknownDescriptor:
    """Any other descriptor type (OSD 06h-08h, vendor 80h-FFh, newer ones), kept raw."""

    type: int
    data: bytes


Descriptor: TypeAlias = (
    InformationDescriptor
    | CommandSpecificDescriptor
    | SenseKeySpecificDescriptor
    | FruDescriptor
    | StreamCommandsDescriptor
    | BlockCommandsDescriptor
    | AtaStatusReturn
    | ProgressIndicationDescriptor
    | UserDataSegmentReferral
    | ForwardedSenseDescriptor
    | DirectAccessBlockDescriptor
    | DeviceDesignationDescriptor
    | MicrocodeActivationDescriptor
    | UnknownDescriptor
)
"""Any decoded sense data descriptor (usable with isinstance)."""

# Minimum additional length each known type needs to be decoded (shorter: kept raw).
_MIN_LENGTH = {
    0x00: 0x0A,
    0x01: 0x0A,
    0x02: 0x06,
    0x03: 0x02,
    0x04: 0x02,
    0x05: 0x02,
    0x09: 0x0C,
    0x0A: 0x06,
    0x0B: 0x02,
    0x0C: 0x02,
    0x0D: 0x16,
    0x0E: 0x02,
    0x0F: 0x06,
}


def _descriptor(sense_key: int, dtype: int, body: bytes) -> Descriptor:
    """Decode one descriptor; ``body`` is everything after its two header bytes."""
    if len(body) < _MIN_LENGTH.get(dtype, 0x100):
        return UnknownDescriptor(dtype, body)
    be = int.from_bytes
    if dtype == 0x00:
        return InformationDescriptor(be(body[2:10], "big"), bool(body[0] & 0x80))
    if dtype == 0x01:
        return CommandSpecificDescriptor(be(body[2:10], "big"))
    if dtype == 0x02:
        return SenseKeySpecificDescriptor(decode_sks(sense_key, body[2:5]))
    if dtype == 0x03:
        return FruDescriptor(body[1])
    if dtype == 0x04:
        b = body[1]
        return StreamCommandsDescriptor(bool(b & 0x80), bool(b & 0x40), bool(b & 0x20))
    if dtype == 0x05:
        return BlockCommandsDescriptor(bool(body[1] & 0x20))
    if dtype == 0x09:
        # LBA bytes interleave high and low halves: 31:24, 7:0, 39:32, 15:8, 47:40, 23:16.
        lba = be(bytes((body[8], body[6], body[4], body[9], body[7], body[5])), "big")
        count = be(body[2:4], "big")
        return AtaStatusReturn(bool(body[0] & 0x01), body[1], count, lba, body[10], body[11])
    if dtype == 0x0A:
        return ProgressIndicationDescriptor(body[0] & 0x0F, body[1], body[2], be(body[4:6], "big"))
    if dtype == 0x0B:
        return UserDataSegmentReferral(bool(body[0] & 0x01), body[2:])
    if dtype == 0x0C:
        return ForwardedSenseDescriptor(bool(body[0] & 0x80), body[0] & 0x0F, body[1], body[2:])
    if dtype == 0x0D:
        return DirectAccessBlockDescriptor(
            bool(body[0] & 0x80),
            bool(body[0] & 0x20),
            body[2:5],
            body[5],
            be(body[6:14], "big"),
            be(body[14:22], "big"),
        )
    if dtype == 0x0E:
        return DeviceDesignationDescriptor(body[2:])
    if dtype == 0x0F:
        return MicrocodeActivationDescriptor(be(body[4:6], "big"))
    return UnknownDescriptor(dtype, body)


# --------------------------------------------------------------------------------------
# The decoded sense data.


def _sense_key(value: int) -> int:
    return SenseKey(value & 0x0F)


@frozen
class Sense:
    """Decoded sense data (fixed or descriptor format).

    Attributes:
        response_code: 70h-73h.
        sense_key: a :class:`SenseKey`.
        asc: additional sense code (0 when the data ends before it).
        ascq: additional sense code qualifier (0 when the data ends before it).
        deferred: the error belongs to an earlier command (71h/73h).
        descriptor_format: descriptor format (72h/73h).
        filemark: FILEMARK (fixed byte 2, or the stream commands descriptor).
        eom: END OF MEDIUM.
        ili: INCORRECT LENGTH INDICATOR.
        information: the INFORMATION field; None when absent or its VALID bit is clear.
        command_specific: command-specific information; None when absent.
        sks: the decoded sense-key-specific data; None when absent or SKSV is clear.
        fru: field replaceable unit code (0: none).
        descriptors: every descriptor, in order (descriptor format only).
        additional: fixed format bytes 18 and on (vendor data), raw.
        short: the data ended before the length it claims (or before byte 14 of fixed
            sense); what is there was decoded, the rest is absent.
        sdat_ovfl: fixed format SDAT_OVFL: the device had more sense data than fits.
    """

    response_code: int
    sense_key: int = field(converter=_sense_key)
    asc: int = 0
    ascq: int = 0
    deferred: bool = False
    descriptor_format: bool = False
    filemark: bool = False
    eom: bool = False
    ili: bool = False
    information: int | None = None
    command_specific: int | None = None
    sks: SenseKeySpecific | None = None
    fru: int = 0
    descriptors: tuple[Descriptor, ...] = ()
    additional: bytes = b""
    short: bool = False
    sdat_ovfl: bool = False

    @property
    def description(self) -> str:
        """T10's text for the ASC/ASCQ pair (or a vendor/unknown fallback)."""
        return asc_description(self.asc, self.ascq)

    @property
    def residual(self) -> int | None:
        """The INFORMATION field read as a signed residual (SSC: negative = block longer).

        None when there is no valid INFORMATION. Fixed format holds 4 bytes, descriptor
        format 8.
        """
        if self.information is None:
            return None
        bits = 64 if self.descriptor_format else 32
        value = self.information
        return value - (1 << bits) if value >> (bits - 1) else value

    def descriptor(self, dtype: int) -> Descriptor | None:
        """The first descriptor of type ``dtype``, or None."""
        for d in self.descriptors:
            if getattr(d, "TYPE", getattr(d, "type", None)) == dtype:
                return d
        return None

    def __str__(self) -> str:
        key = SenseKey(self.sense_key).label
        text = f"{key}: {self.description} ({self.asc:02X}/{self.ascq:02X})"
        flags = [n for n, v in (("FILEMARK", self.filemark), ("EOM", self.eom)) if v]
        if self.ili:
            flags.append("ILI")
        if self.deferred:
            flags.insert(0, "deferred")
        return f"{text} [{' '.join(flags)}]" if flags else text


def decode_sense(buf: Bytes) -> Sense:
    """Decode fixed (70h/71h) or descriptor (72h/73h) sense data.

    Args:
        buf: the sense bytes as the device returned them (any length).

    Returns:
        The decoded :class:`Sense`; unknown codes and descriptors are kept, never refused.

    Raises:
        DecodeError: the buffer is empty, its response code is not 70h-73h, or it ends
            before the sense key.
    """
    data = bytes(buf)
    if not data:
        raise DecodeError("sense data: empty buffer")
    code = data[0] & 0x7F
    if code in (0x70, 0x71):
        return _decode_fixed(data, code)
    if code in (0x72, 0x73):
        return _decode_descriptor(data, code)
    raise DecodeError(f"sense data: response code {code:02X}h is not 70h-73h")


def _decode_fixed(data: bytes, code: int) -> Sense:
    if len(data) < 3:
        raise DecodeError(f"fixed sense data: {len(data)} bytes end before the sense key")
    claimed = 8 + data[7] if len(data) >= 8 else 18
    end = min(len(data), claimed)
    short = len(data) < claimed or end < 14
    b2 = data[2]

    def field_at(start: int, size: int) -> int | None:
        return int.from_bytes(data[start : start + size], "big") if end >= start + size else None

    information = field_at(3, 4) if data[0] & 0x80 else None
    sks = decode_sks(b2 & 0x0F, data[15:18]) if end >= 18 else None
    return Sense(
        response_code=code,
        sense_key=b2 & 0x0F,
        asc=data[12] if end > 12 else 0,
        ascq=data[13] if end > 13 else 0,
        deferred=code == 0x71,
        filemark=bool(b2 & 0x80),
        eom=bool(b2 & 0x40),
        ili=bool(b2 & 0x20),
        sdat_ovfl=bool(b2 & 0x10),
        information=information,
        command_specific=field_at(8, 4),
        sks=sks,
        fru=data[14] if end > 14 else 0,
        additional=data[18:end],
        short=short,
    )


def _decode_descriptor(data: bytes, code: int) -> Sense:
    if len(data) < 2:
        raise DecodeError("descriptor sense data: 1 byte ends before the sense key")
    claimed = 8 + data[7] if len(data) >= 8 else 8
    end = min(len(data), claimed)
    short = len(data) < claimed
    key = data[1] & 0x0F
    values: dict[str, object] = {}
    descriptors: list[Descriptor] = []
    pos = 8
    while pos + 2 <= end:
        dtype, dlen = data[pos], data[pos + 1]
        body = data[pos + 2 : min(pos + 2 + dlen, end)]
        if len(body) < dlen:
            short = True
        d = _descriptor(key, dtype, body)
        descriptors.append(d)
        _merge(d, key, values)
        pos += 2 + dlen
    if end - pos == 1:
        short = True
    return Sense(
        response_code=code,
        sense_key=key,
        asc=data[2] if end > 2 else 0,
        ascq=data[3] if end > 3 else 0,
        deferred=code == 0x73,
        descriptor_format=True,
        descriptors=tuple(descriptors),
        short=short,
        **values,  # type: ignore[arg-type]
    )


def _merge(d: Descriptor, key: int, values: dict[str, object]) -> None:
    """Lift a descriptor's fields to the Sense attributes (the first one of a kind wins)."""
    if isinstance(d, InformationDescriptor):
        if d.valid:
            values.setdefault("information", d.information)
    elif isinstance(d, CommandSpecificDescriptor):
        values.setdefault("command_specific", d.information)
    elif isinstance(d, SenseKeySpecificDescriptor):
        if d.sks is not None:
            values.setdefault("sks", d.sks)
    elif isinstance(d, FruDescriptor):
        values.setdefault("fru", d.fru)
    elif isinstance(d, StreamCommandsDescriptor):
        values["filemark"] = values.get("filemark", False) or d.filemark
        values["eom"] = values.get("eom", False) or d.eom
        values["ili"] = values.get("ili", False) or d.ili
    elif isinstance(d, BlockCommandsDescriptor):
        values["ili"] = values.get("ili", False) or d.ili
    elif isinstance(d, DirectAccessBlockDescriptor):
        if d.valid:
            values.setdefault("information", d.information)
        values.setdefault("command_specific", d.command_specific)
        values["ili"] = values.get("ili", False) or d.ili
        sks = decode_sks(key, d.sks_bytes)
        if sks is not None:
            values.setdefault("sks", sks)
        if d.fru:
            values.setdefault("fru", d.fru)


# --------------------------------------------------------------------------------------
# Encoders.


def _sks_bytes(sks: SenseKeySpecific | bytes | None) -> bytes | None:
    if sks is None:
        return None
    raw = sks if isinstance(sks, bytes | bytearray) else sks.to_bytes()
    if len(raw) != 3:
        raise ValueError(f"sks must be 3 bytes, got {len(raw)}")
    return bytes(raw)


def _check_common(sense_key: int, asc: int, ascq: int, flags: dict[str, bool]) -> None:
    check_uint("sense_key", int(sense_key), 4)
    check_uint("asc", asc, 8)
    check_uint("ascq", ascq, 8)
    for name, value in flags.items():
        check_flag(name, value)


def fixed_sense(
    sense_key: int,
    asc: int = 0,
    ascq: int = 0,
    *,
    information: int | None = None,
    filemark: bool = False,
    eom: bool = False,
    ili: bool = False,
    deferred: bool = False,
    sks: SenseKeySpecific | bytes | None = None,
    command_specific: int | None = None,
    fru: int = 0,
) -> bytes:
    """Build 18 bytes of fixed format sense data (70h, or 71h when ``deferred``).

    Args:
        sense_key: the sense key (0..15).
        asc: additional sense code.
        ascq: additional sense code qualifier.
        information: the INFORMATION field (32 bits; sets VALID); None leaves it clear.
            A negative value is stored as a 32-bit two's complement residual.
        filemark: FILEMARK bit.
        eom: EOM bit.
        ili: ILI bit.
        deferred: report a deferred error (71h).
        sks: sense-key-specific data (a variant, or three raw bytes with SKSV set).
        command_specific: the command-specific information field (32 bits).
        fru: field replaceable unit code.

    Raises:
        ValueError: a field does not fit.
    """
    _check_common(sense_key, asc, ascq, {"filemark": filemark, "eom": eom, "ili": ili})
    check_flag("deferred", deferred)
    check_uint("fru", fru, 8)
    if information is not None and information < 0:
        if information < -(1 << 31):
            raise ValueError(f"information={information} does not fit in 32 bits")
        information &= 0xFFFFFFFF
    if information is not None:
        check_uint("information", information, 32)
    if command_specific is not None:
        check_uint("command_specific", command_specific, 32)
    out = bytearray(18)
    out[0] = (0x71 if deferred else 0x70) | (0x80 if information is not None else 0)
    out[2] = (0x80 if filemark else 0) | (0x40 if eom else 0) | (0x20 if ili else 0) | sense_key
    out[3:7] = (information or 0).to_bytes(4, "big")
    out[7] = 10
    out[8:12] = (command_specific or 0).to_bytes(4, "big")
    out[12], out[13], out[14] = asc, ascq, fru
    raw = _sks_bytes(sks)
    if raw is not None:
        out[15:18] = raw
    return bytes(out)


def descriptor_sense(
    sense_key: int,
    asc: int = 0,
    ascq: int = 0,
    *,
    information: int | None = None,
    filemark: bool = False,
    eom: bool = False,
    ili: bool = False,
    deferred: bool = False,
    sks: SenseKeySpecific | bytes | None = None,
    command_specific: int | None = None,
    fru: int = 0,
    extra: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """Build descriptor format sense data (72h, or 73h when ``deferred``).

    Arguments are those of :func:`fixed_sense`; INFORMATION and command-specific
    information are 64-bit here. Descriptors are written only for what is given:
    information (00h), command-specific (01h), sense key specific (02h), FRU (03h),
    stream commands (04h, when a flag is set), then ``extra`` ``(type, body)`` pairs.

    Raises:
        ValueError: a field does not fit, or the data would exceed 252 bytes.
    """
    _check_common(sense_key, asc, ascq, {"filemark": filemark, "eom": eom, "ili": ili})
    check_flag("deferred", deferred)
    check_uint("fru", fru, 8)
    if information is not None and information < 0:
        if information < -(1 << 63):
            raise ValueError(f"information={information} does not fit in 64 bits")
        information &= (1 << 64) - 1
    body = bytearray()
    if information is not None:
        check_uint("information", information, 64)
        body += b"\x00\x0a\x80\x00" + information.to_bytes(8, "big")
    if command_specific is not None:
        check_uint("command_specific", command_specific, 64)
        body += b"\x01\x0a\x00\x00" + command_specific.to_bytes(8, "big")
    raw = _sks_bytes(sks)
    if raw is not None:
        body += b"\x02\x06\x00\x00" + raw + b"\x00"
    if fru:
        body += bytes((0x03, 0x02, 0x00, fru))
    if filemark or eom or ili:
        flags = (0x80 if filemark else 0) | (0x40 if eom else 0) | (0x20 if ili else 0)
        body += bytes((0x04, 0x02, 0x00, flags))
    for dtype, payload in extra:
        check_uint("descriptor type", dtype, 8)
        check_uint("descriptor length", len(payload), 8)
        body += bytes((dtype, len(payload))) + payload
    if len(body) > 244:
        raise ValueError(f"descriptors take {len(body)} bytes; at most 244 fit")
    head = bytes((0x73 if deferred else 0x72, sense_key, asc, ascq, 0, 0, 0, len(body)))
    return head + bytes(body)
