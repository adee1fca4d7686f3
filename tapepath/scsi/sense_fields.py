"""The parts of sense data (SPC-5 4.4): sense keys, sense-key-specific data, descriptors.

:mod:`tapepath.scsi.sense` assembles these into a :class:`~tapepath.scsi.sense.Sense`;
they live here so each module does one thing. Everything is re-exported there.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_flag, trusted, uint_field


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
        return trusted(FieldPointer)(
            cdb=bool(b0 & 0x40),
            bpv=bool(b0 & 0x08),
            bit_pointer=b0 & 0x07,
            field_pointer=value,
        )
    if sense_key in (SenseKey.RECOVERED_ERROR, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR):
        return trusted(ActualRetryCount)(count=value)
    if sense_key in (SenseKey.NO_SENSE, SenseKey.NOT_READY):
        return trusted(ProgressIndication)(progress=value)
    if sense_key == SenseKey.COPY_ABORTED:
        return trusted(SegmentPointer)(
            sd=bool(b0 & 0x20),
            bpv=bool(b0 & 0x08),
            bit_pointer=b0 & 0x07,
            field_pointer=value,
        )
    if sense_key == SenseKey.UNIT_ATTENTION:
        return trusted(UnitAttentionQueueOverflow)(overflow=bool(b0 & 0x01))
    return trusted(RawSenseKeySpecific)(value=int.from_bytes(sks[:3], "big") & 0x7FFFFF)


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


def decode_descriptor(sense_key: int, dtype: int, body: bytes) -> Descriptor:
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
