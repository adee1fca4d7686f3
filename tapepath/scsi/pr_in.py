"""PERSISTENT RESERVE IN data (SPC-4 6.14): READ KEYS, READ RESERVATION, REPORT
CAPABILITIES and READ FULL STATUS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from attrs import Attribute, field, frozen
from attrs.validators import instance_of

from tapepath.errors import DecodeError
from tapepath.scsi._wire import (
    Bytes,
    check_uint,
    flag_field,
    items_of,
    need,
    parse_entries,
    u16,
    u32,
    u64,
    uint_field,
)
from tapepath.scsi.pr_codes import PrType, _pr_type
from tapepath.scsi.pr_out import TransportId

__all__ = [
    "FullStatusDescriptor",
    "ReadFullStatus",
    "ReadKeys",
    "ReadReservation",
    "ReportCapabilities",
]


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _fsd_tuple(value: Iterable[FullStatusDescriptor]) -> tuple[FullStatusDescriptor, ...]:
    return tuple(value)


def _keys(_inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 64)


def _header(generation: int, body: bytes) -> bytes:
    if len(body) > 0xFFFFFFFF:  # pragma: no cover - not reachable with real data
        raise ValueError("PR IN data too long")
    return generation.to_bytes(4, "big") + len(body).to_bytes(4, "big") + body


def _pr_in(buf: Bytes, what: str) -> tuple[int, bytes, int]:
    """Return (generation, the body present, the additional length sent)."""
    need(buf, 8, what)
    length = u32(buf, 4)
    return u32(buf, 0), bytes(buf[8 : 8 + length]), length


@frozen
class ReadKeys:
    """READ KEYS data: the generation and the registered keys.

    Attributes:
        additional_length: as sent (None: from ``keys``); more than ``8 * len(keys)`` means
            the allocation length cut the list. Not part of equality.
    """

    generation: int = field(default=0, validator=uint_field(32))
    keys: tuple[int, ...] = field(default=(), converter=_int_tuple, validator=_keys)
    additional_length: int | None = field(default=None, eq=False)

    @property
    def truncated(self) -> bool:
        """The allocation length cut the key list."""
        return self.additional_length is not None and self.additional_length > 8 * len(self.keys)

    def to_bytes(self) -> bytes:
        """Encode the data."""
        return _header(self.generation, b"".join(k.to_bytes(8, "big") for k in self.keys))

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ReadKeys:
        """Parse READ KEYS data (whole keys only when cut short)."""
        generation, body, length = _pr_in(buf, "READ KEYS data")
        keys = tuple(u64(body, off) for off in range(0, len(body) - 7, 8))
        return cls(generation, keys, length)


@frozen
class ReadReservation:
    """READ RESERVATION data.

    Attributes:
        generation: 32 bits.
        reservation_key: the holder's key, or None when no reservation is held.
        pr_type: :class:`PrType` of the reservation (0 when none).
        scope: 4 bits.
    """

    generation: int = field(default=0, validator=uint_field(32))
    reservation_key: int | None = field(default=None)
    pr_type: int = field(default=0, converter=_pr_type, validator=uint_field(4))
    scope: int = field(default=0, validator=uint_field(4))

    def __attrs_post_init__(self) -> None:
        if self.reservation_key is not None:
            check_uint("reservation_key", self.reservation_key, 64)

    def to_bytes(self) -> bytes:
        """Encode the data (8 bytes without a reservation, 24 with one)."""
        if self.reservation_key is None:
            return _header(self.generation, b"")
        body = (
            self.reservation_key.to_bytes(8, "big")
            + bytes(5)
            + bytes(((self.scope << 4) | int(self.pr_type), 0, 0))
        )
        return _header(self.generation, body)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ReadReservation:
        """Parse READ RESERVATION data."""
        generation, body, length = _pr_in(buf, "READ RESERVATION data")
        if length == 0:
            return cls(generation)
        if length < 16 or len(body) < 16:
            raise DecodeError(f"READ RESERVATION: additional length {length}, 16 expected")
        return cls(generation, u64(body, 0), body[13] & 0x0F, body[13] >> 4)


@frozen
class ReportCapabilities:
    """REPORT CAPABILITIES data (8 bytes).

    Attributes:
        rlr_c: replace lost reservation capable.
        crh: compatible reservation handling.
        sip_c: specify initiator ports capable.
        atp_c: all target ports capable.
        ptpl_c: persist through power loss capable.
        tmv: the type mask is valid.
        allow_commands: 3 bits.
        ptpl_a: persist through power loss activated.
        type_mask: the 16-bit PERSISTENT RESERVATION TYPE MASK as sent.
    """

    rlr_c: bool = field(default=False, validator=flag_field)
    crh: bool = field(default=False, validator=flag_field)
    sip_c: bool = field(default=False, validator=flag_field)
    atp_c: bool = field(default=False, validator=flag_field)
    ptpl_c: bool = field(default=False, validator=flag_field)
    tmv: bool = field(default=False, validator=flag_field)
    allow_commands: int = field(default=0, validator=uint_field(3))
    ptpl_a: bool = field(default=False, validator=flag_field)
    type_mask: int = field(default=0, validator=uint_field(16))

    # bit of the 16-bit mask (byte 4 is the high byte) for each type
    _TYPE_BITS: ClassVar[dict[PrType, int]] = {
        PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS: 15,
        PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 14,
        PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 13,
        PrType.EXCLUSIVE_ACCESS: 11,
        PrType.WRITE_EXCLUSIVE: 9,
        PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 0,
    }

    @classmethod
    def mask_for(cls, types: set[PrType] | frozenset[PrType]) -> int:
        """The type mask with the bits of ``types`` set."""
        mask = 0
        for t in types:
            mask |= 1 << cls._TYPE_BITS[PrType(t)]
        return mask

    @property
    def supported_types(self) -> frozenset[PrType]:
        """The reservation types the mask announces (empty unless ``tmv``)."""
        if not self.tmv:
            return frozenset()
        return frozenset(t for t, bit in self._TYPE_BITS.items() if self.type_mask >> bit & 1)

    def to_bytes(self) -> bytes:
        """Encode the data."""
        return (
            b"\x00\x08"
            + bytes(
                (
                    (self.rlr_c << 7)
                    | (self.crh << 4)
                    | (self.sip_c << 3)
                    | (self.atp_c << 2)
                    | int(self.ptpl_c),
                    (self.tmv << 7) | (self.allow_commands << 4) | int(self.ptpl_a),
                )
            )
            + self.type_mask.to_bytes(2, "big")
            + b"\0\0"
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ReportCapabilities:
        """Parse REPORT CAPABILITIES data."""
        need(buf, 6, "REPORT CAPABILITIES data")
        b2, b3 = buf[2], buf[3]
        return cls(
            rlr_c=bool(b2 & 0x80),
            crh=bool(b2 & 0x10),
            sip_c=bool(b2 & 0x08),
            atp_c=bool(b2 & 0x04),
            ptpl_c=bool(b2 & 0x01),
            tmv=bool(b3 & 0x80),
            allow_commands=(b3 >> 4) & 7,
            ptpl_a=bool(b3 & 0x01),
            type_mask=u16(buf, 4),
        )


@frozen
class FullStatusDescriptor:
    """One registration of READ FULL STATUS data."""

    reservation_key: int = field(validator=uint_field(64))
    transport_id: TransportId = field(validator=instance_of(TransportId))
    all_tg_pt: bool = field(default=False, validator=flag_field)
    r_holder: bool = field(default=False, validator=flag_field)
    pr_type: int = field(default=0, converter=_pr_type, validator=uint_field(4))
    scope: int = field(default=0, validator=uint_field(4))
    relative_target_port: int = field(default=0, validator=uint_field(16))

    def to_bytes(self) -> bytes:
        """Encode the descriptor."""
        tid = self.transport_id.to_bytes()
        return (
            self.reservation_key.to_bytes(8, "big")
            + bytes(4)
            + bytes(
                ((self.all_tg_pt << 1) | int(self.r_holder), (self.scope << 4) | int(self.pr_type))
            )
            + bytes(4)
            + self.relative_target_port.to_bytes(2, "big")
            + len(tid).to_bytes(4, "big")
            + tid
        )

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[FullStatusDescriptor, int]:
        """Parse the descriptor at ``offset``; return it and the offset after it."""
        need(buf, offset + 24, "full status descriptor")
        length = u32(buf, offset + 20)
        end = offset + 24 + length
        if end > len(buf):
            raise DecodeError(f"full status descriptor at {offset}: length {length} runs past")
        tid = TransportId.from_bytes(buf[offset + 24 : end]) if length else TransportId(0xF, b"")
        return (
            cls(
                u64(buf, offset),
                tid,
                bool(buf[offset + 12] & 2),
                bool(buf[offset + 12] & 1),
                buf[offset + 13] & 0x0F,
                buf[offset + 13] >> 4,
                u16(buf, offset + 18),
            ),
            end,
        )


@frozen
class ReadFullStatus:
    """READ FULL STATUS data: the generation and every registration."""

    generation: int = field(default=0, validator=uint_field(32))
    descriptors: tuple[FullStatusDescriptor, ...] = field(
        default=(), converter=_fsd_tuple, validator=items_of(FullStatusDescriptor)
    )

    def to_bytes(self) -> bytes:
        """Encode the data."""
        return _header(self.generation, b"".join(d.to_bytes() for d in self.descriptors))

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ReadFullStatus:
        """Parse READ FULL STATUS data (whole descriptors only when cut short)."""
        generation, body, length = _pr_in(buf, "READ FULL STATUS data")
        found = parse_entries(
            body, 0, len(body), FullStatusDescriptor.parse, complete=len(body) == length
        )
        return cls(generation, found)
