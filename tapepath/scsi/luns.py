"""REPORT LUNS (A0h, SPC) and the 8-byte LUN structure (SAM-5 4.7)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, need, u32, uint_field
from tapepath.scsi.cdb import check_opcode, check_reserved, check_zero

__all__ = [
    "AddressMethod",
    "Lun",
    "LunList",
    "ReportLuns",
    "decode_lun",
    "encode_lun",
]


class AddressMethod(IntEnum):
    """ADDRESS METHOD, bits 7-6 of the first byte of a LUN level."""

    PERIPHERAL = 0
    FLAT = 1
    LOGICAL_UNIT = 2
    EXTENDED = 3


@frozen
class ReportLuns:
    """The REPORT LUNS CDB (A0h, 12 bytes).

    Attributes:
        select_report: which LUNs to report (0 all, 1 well-known, 2 all accessible, ...).
        allocation_length: 32 bits; at least 16 by the standard.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0xA0
    select_report: int = field(default=0, validator=uint_field(8))
    allocation_length: int = field(default=8 + 8 * 256, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return (
            bytes((self.OPCODE, 0, self.select_report, 0, 0, 0))
            + self.allocation_length.to_bytes(4, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReportLuns:
        """Parse a REPORT LUNS CDB."""
        check_opcode(cdb, cls.OPCODE, 12, "REPORT LUNS")
        check_reserved(cdb, "REPORT LUNS", (1, 0xFF), (10, 0xFF))
        check_zero(cdb, "REPORT LUNS", 3, 6)
        return cls(select_report=cdb[2], allocation_length=u32(cdb, 6), control=cdb[11])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


def encode_lun(n: int) -> bytes:
    """The 8-byte LUN for logical unit number ``n``, as Linux and most targets form it.

    Numbers 0..255 use peripheral device addressing (bus 0), 256..16383 flat space
    addressing.

    Raises:
        ValueError: ``n`` is negative or above 16383.
    """
    check_uint("lun", n, 14)
    if n < 256:
        return bytes((0, n)) + bytes(6)
    return bytes((0x40 | (n >> 8), n & 0xFF)) + bytes(6)


@frozen
class Lun:
    """A decoded LUN (its first level).

    Attributes:
        raw: the 8 bytes.
        method: the first level's :class:`AddressMethod`.
        number: the logical unit number the first level carries: the target/LUN byte
            (peripheral), the 14-bit flat LUN, the LUN bits (logical unit addressing) or,
            for extended addressing, the extended LUN value.
        bus: the bus identifier (peripheral) or bus number (logical unit addressing), else 0.
        target: the target (logical unit addressing), else 0.
        single_level: every byte after the first level is zero.
    """

    raw: bytes
    method: int
    number: int
    bus: int = 0
    target: int = 0
    single_level: bool = True


def decode_lun(raw: Bytes) -> Lun:
    """Decode an 8-byte LUN.

    Every address method decodes (unknown extended forms keep their value as the number),
    so a device's LUN list never makes this fail.

    Raises:
        DecodeError: ``raw`` is not 8 bytes long.
    """
    if len(raw) != 8:
        raise DecodeError(f"LUN: 8 bytes expected, got {len(raw)}")
    raw = bytes(raw)
    b0, b1 = raw[0], raw[1]
    method = b0 >> 6
    single = not any(raw[2:])
    if method == AddressMethod.PERIPHERAL:
        return Lun(raw, AddressMethod.PERIPHERAL, b1, bus=b0 & 0x3F, single_level=single)
    if method == AddressMethod.FLAT:
        return Lun(raw, AddressMethod.FLAT, ((b0 & 0x3F) << 8) | b1, single_level=single)
    if method == AddressMethod.LOGICAL_UNIT:
        return Lun(
            raw,
            AddressMethod.LOGICAL_UNIT,
            b1 & 0x1F,
            bus=b1 >> 5,
            target=b0 & 0x3F,
            single_level=single,
        )
    # Extended addressing: length (bits 5-4) selects 2, 4, 6 or 8 bytes.
    length = (b0 >> 4) & 3
    size = 2 * (length + 1)
    value = int.from_bytes(raw[1:size], "big") if size > 1 else 0
    single = not any(raw[size:])
    return Lun(raw, AddressMethod.EXTENDED, value, single_level=single)


def _to_lun_bytes(values: Any) -> tuple[bytes, ...]:
    out = []
    for v in values:
        out.append(encode_lun(v) if isinstance(v, int) else bytes(v))
    return tuple(out)


def _lun_entries(_inst: Any, attr: Attribute[tuple[bytes, ...]], value: tuple[bytes, ...]) -> None:
    for i, v in enumerate(value):
        if len(v) != 8:
            raise ValueError(f"{attr.name}[{i}] is {len(v)} bytes long, a LUN is 8")


def _opt_u32(_inst: Any, attr: Attribute[int | None], value: int | None) -> None:
    if value is not None:
        check_uint(attr.name, value, 32)


@frozen
class LunList:
    """REPORT LUNS parameter data.

    Attributes:
        luns: the 8-byte LUNs (ints given to the constructor are encoded with
            :func:`encode_lun`).
        list_length: the LUN LIST LENGTH the device sent (None: from ``luns``); more than
            ``8 * len(luns)`` means the allocation length cut the list. Not part of equality.
    """

    luns: tuple[bytes, ...] = field(default=(), converter=_to_lun_bytes, validator=_lun_entries)
    list_length: int | None = field(default=None, eq=False, validator=_opt_u32)

    @property
    def truncated(self) -> bool:
        """The device has more LUNs than the allocation length let through."""
        return self.list_length is not None and self.list_length > 8 * len(self.luns)

    @property
    def numbers(self) -> tuple[int, ...]:
        """The logical unit number of each entry (see :attr:`Lun.number`)."""
        return tuple(decode_lun(r).number for r in self.luns)

    def to_bytes(self) -> bytes:
        """Encode the parameter data."""
        length = 8 * len(self.luns)
        return length.to_bytes(4, "big") + bytes(4) + b"".join(self.luns)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> LunList:
        """Parse REPORT LUNS data; a list cut by the allocation length keeps its whole entries.

        Raises:
            DecodeError: fewer than 8 bytes.
        """
        need(buf, 8, "REPORT LUNS data")
        length = u32(buf, 0)
        end = min(len(buf), 8 + length)
        count = (end - 8) // 8
        entries = tuple(bytes(buf[8 + 8 * i : 16 + 8 * i]) for i in range(count))
        return cls(entries, list_length=length)
