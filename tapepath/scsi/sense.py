"""Sense data (SPC-5 4.4): decoding, the sense-key-specific variants, and encoders.

:func:`decode_sense` reads fixed (70h/71h) and descriptor (72h/73h) sense data. It is
bounded by the buffer (the ADDITIONAL SENSE LENGTH may lie either way), keeps unknown
descriptor types raw, and raises :class:`~tapepath.errors.DecodeError` only for bytes it
cannot use at all (empty, a response code that is not sense data, too short to hold
the sense key). :func:`fixed_sense` and :func:`descriptor_sense` build sense data for the
virtual library and the tests; ``decode_sense(fixed_sense(...))`` gives back what went in.
"""

from __future__ import annotations

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_flag, check_uint, trusted
from tapepath.scsi.asc import asc_description
from tapepath.scsi.sense_fields import (
    ActualRetryCount,
    AtaStatusReturn,
    BlockCommandsDescriptor,
    CommandSpecificDescriptor,
    Descriptor,
    DeviceDesignationDescriptor,
    DirectAccessBlockDescriptor,
    FieldPointer,
    ForwardedSenseDescriptor,
    FruDescriptor,
    InformationDescriptor,
    MicrocodeActivationDescriptor,
    ProgressIndication,
    ProgressIndicationDescriptor,
    RawSenseKeySpecific,
    SegmentPointer,
    SenseKey,
    SenseKeySpecific,
    SenseKeySpecificDescriptor,
    StreamCommandsDescriptor,
    UnitAttentionQueueOverflow,
    UnknownDescriptor,
    UserDataSegmentReferral,
    decode_descriptor,
    decode_sks,
)

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
    return trusted(Sense)(
        response_code=code,
        sense_key=SenseKey(b2 & 0x0F),
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
        d = decode_descriptor(key, dtype, body)
        descriptors.append(d)
        _merge(d, key, values)
        pos += 2 + dlen
    if end - pos == 1:
        short = True
    return trusted(Sense)(
        response_code=code,
        sense_key=SenseKey(key),
        asc=data[2] if end > 2 else 0,
        ascq=data[3] if end > 3 else 0,
        deferred=code == 0x73,
        descriptor_format=True,
        descriptors=tuple(descriptors),
        short=short,
        **values,
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


def _builder_fields(
    sense_key: int,
    asc: int,
    ascq: int,
    flags: dict[str, bool],
    *,
    deferred: bool,
    fru: int,
    information: int | None,
    command_specific: int | None,
    bits: int,
) -> int | None:
    """Check a sense builder's arguments; return INFORMATION as an unsigned ``bits`` value.

    A negative INFORMATION (a residual) is stored in two's complement.
    """
    _check_common(sense_key, asc, ascq, flags)
    check_flag("deferred", deferred)
    check_uint("fru", fru, 8)
    if information is not None and information < 0:
        if information < -(1 << (bits - 1)):
            raise ValueError(f"information={information} does not fit in {bits} bits")
        information &= (1 << bits) - 1
    if information is not None:
        check_uint("information", information, bits)
    if command_specific is not None:
        check_uint("command_specific", command_specific, bits)
    return information


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
    information = _builder_fields(
        sense_key,
        asc,
        ascq,
        {"filemark": filemark, "eom": eom, "ili": ili},
        deferred=deferred,
        fru=fru,
        information=information,
        command_specific=command_specific,
        bits=32,
    )
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
    information = _builder_fields(
        sense_key,
        asc,
        ascq,
        {"filemark": filemark, "eom": eom, "ili": ili},
        deferred=deferred,
        fru=fru,
        information=information,
        command_specific=command_specific,
        bits=64,
    )
    body = bytearray()
    if information is not None:
        body += b"\x00\x0a\x80\x00" + information.to_bytes(8, "big")
    if command_specific is not None:
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
