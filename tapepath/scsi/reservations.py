"""PERSISTENT RESERVE IN (5Eh) and OUT (5Fh): CDBs, parameter lists and returned data."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
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
from tapepath.scsi.cdb import ParameterListCommand, check_opcode, check_reserved, check_zero
from tapepath.scsi.inquiry import enum_or_int

__all__ = [
    "FullStatusDescriptor",
    "PersistentReserveIn",
    "PersistentReserveOut",
    "PrInAction",
    "PrOutAction",
    "PrOutParameters",
    "PrType",
    "ReadFullStatus",
    "ReadKeys",
    "ReadReservation",
    "RegisterAndMoveParameters",
    "ReportCapabilities",
    "TransportId",
]


class PrInAction(IntEnum):
    """PERSISTENT RESERVE IN service actions."""

    READ_KEYS = 0
    READ_RESERVATION = 1
    REPORT_CAPABILITIES = 2
    READ_FULL_STATUS = 3


class PrOutAction(IntEnum):
    """PERSISTENT RESERVE OUT service actions."""

    REGISTER = 0
    RESERVE = 1
    RELEASE = 2
    CLEAR = 3
    PREEMPT = 4
    PREEMPT_AND_ABORT = 5
    REGISTER_AND_IGNORE_EXISTING_KEY = 6
    REGISTER_AND_MOVE = 7
    REPLACE_LOST_RESERVATION = 8


class PrType(IntEnum):
    """Persistent reservation TYPE."""

    WRITE_EXCLUSIVE = 1
    EXCLUSIVE_ACCESS = 3
    WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 5
    EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 6
    WRITE_EXCLUSIVE_ALL_REGISTRANTS = 7
    EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 8


def _in_action(value: int) -> int:
    return enum_or_int(PrInAction, value)


def _out_action(value: int) -> int:
    return enum_or_int(PrOutAction, value)


def _pr_type(value: int) -> int:
    return enum_or_int(PrType, value)


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _tid_tuple(value: Iterable[TransportId]) -> tuple[TransportId, ...]:
    return tuple(value)


def _fsd_tuple(value: Iterable[FullStatusDescriptor]) -> tuple[FullStatusDescriptor, ...]:
    return tuple(value)


@frozen
class PersistentReserveIn:
    """The PERSISTENT RESERVE IN CDB (5Eh, 10 bytes)."""

    OPCODE: ClassVar[int] = 0x5E
    service_action: int = field(default=0, converter=_in_action, validator=uint_field(5))
    allocation_length: int = field(default=1024, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.service_action), 0, 0, 0, 0, 0))
            + self.allocation_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> PersistentReserveIn:
        """Parse a PERSISTENT RESERVE IN CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "PERSISTENT RESERVE IN")
        check_reserved(cdb, "PERSISTENT RESERVE IN", (1, 0xE0))
        check_zero(cdb, "PERSISTENT RESERVE IN", 2, 7)
        return cls(cdb[1] & 0x1F, u16(cdb, 7), cdb[9])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class PersistentReserveOut(ParameterListCommand):
    """The PERSISTENT RESERVE OUT CDB (5Fh, 10 bytes); the parameter list goes as data out.

    Attributes:
        service_action: :class:`PrOutAction`.
        pr_type: :class:`PrType` (0 where the action takes no type).
        scope: 4 bits, 0 (LU_SCOPE) for every current device.
        parameter_list_length: 32 bits: 24 for the basic list, more with SPEC_I_PT or for
            REGISTER AND MOVE; :meth:`for_parameters` fills it in.
        control: the CONTROL byte.
    """

    NAME: ClassVar[str] = "PERSISTENT RESERVE OUT"
    OPCODE: ClassVar[int] = 0x5F
    service_action: int = field(converter=_out_action, validator=uint_field(5))
    pr_type: int = field(default=0, converter=_pr_type, validator=uint_field(4))
    scope: int = field(default=0, validator=uint_field(4))
    parameter_list_length: int = field(default=24, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    @classmethod
    def for_parameters(
        cls,
        service_action: int,
        params: PrOutParameters | RegisterAndMoveParameters,
        *,
        pr_type: int = 0,
        scope: int = 0,
        control: int = 0,
    ) -> tuple[PersistentReserveOut, bytes]:
        """The CDB and the data-out bytes for a service action.

        Raises:
            ValueError: REGISTER AND MOVE with basic parameters, or the other way round.
        """
        is_move = service_action == PrOutAction.REGISTER_AND_MOVE
        if is_move != isinstance(params, RegisterAndMoveParameters):
            raise ValueError(
                "params: REGISTER AND MOVE takes RegisterAndMoveParameters, the other "
                "service actions PrOutParameters"
            )
        data = params.to_bytes()
        return cls(service_action, pr_type, scope, len(data), control), data

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        return (
            bytes(
                (
                    self.OPCODE,
                    int(self.service_action),
                    (self.scope << 4) | int(self.pr_type),
                    0,
                    0,
                )
            )
            + self.parameter_list_length.to_bytes(4, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> PersistentReserveOut:
        """Parse a PERSISTENT RESERVE OUT CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "PERSISTENT RESERVE OUT")
        check_reserved(cdb, "PERSISTENT RESERVE OUT", (1, 0xE0))
        check_zero(cdb, "PERSISTENT RESERVE OUT", 3, 5)
        return cls(cdb[1] & 0x1F, cdb[2] & 0x0F, cdb[2] >> 4, u32(cdb, 5), cdb[9])


@frozen
class TransportId:
    """A TransportID (SPC-4 7.6.4): names an initiator port.

    Attributes:
        protocol_identifier: 4 bits (0 FC, 5 iSCSI, 6 SAS, ...).
        format_code: 2 bits (iSCSI: 0 device name, 1 port name with ISID).
        data: the bytes after byte 0 as sent (for iSCSI: reserved byte, 16-bit length and
            the NUL-terminated name; for FC and SAS: 23 bytes).
    """

    protocol_identifier: int = field(validator=uint_field(4))
    data: bytes = field(converter=bytes)
    format_code: int = field(default=0, validator=uint_field(2))

    @classmethod
    def iscsi(cls, name: str, isid: str | None = None) -> TransportId:
        """An iSCSI TransportID (format 0, or 1 with ``isid``), padded to a multiple of 4."""
        text = name if isid is None else f"{name},i,0x{isid}"
        raw = text.encode("utf-8") + b"\0"
        raw += b"\0" * (-len(raw) % 4)
        if len(raw) > 0xFFFF:
            raise ValueError("name: too long for a TransportID")
        return cls(5, b"\0" + len(raw).to_bytes(2, "big") + raw, 0 if isid is None else 1)

    @classmethod
    def fc(cls, n_port_name: int) -> TransportId:
        """A Fibre Channel TransportID for an 8-byte N_Port name."""
        check_uint("n_port_name", n_port_name, 64)
        return cls(0, bytes(7) + n_port_name.to_bytes(8, "big") + bytes(8))

    @classmethod
    def sas(cls, sas_address: int) -> TransportId:
        """A SAS TransportID for an 8-byte SAS address."""
        check_uint("sas_address", sas_address, 64)
        return cls(6, bytes(3) + sas_address.to_bytes(8, "big") + bytes(12))

    @property
    def iscsi_name(self) -> str | None:
        """The iSCSI name (with ``,i,0x<ISID>`` for format 1), or None for other protocols."""
        if self.protocol_identifier != 5 or len(self.data) < 3:
            return None
        length = u16(self.data, 1)
        raw = self.data[3 : 3 + length]
        return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")

    @property
    def port_name(self) -> int | None:
        """The FC N_Port name or the SAS address, or None for other protocols."""
        if self.protocol_identifier == 0 and len(self.data) >= 15:
            return u64(self.data, 7)
        if self.protocol_identifier == 6 and len(self.data) >= 11:
            return u64(self.data, 3)
        return None

    def to_bytes(self) -> bytes:
        """Encode the TransportID."""
        return bytes(((self.format_code << 6) | self.protocol_identifier,)) + self.data

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[TransportId, int]:
        """Parse the TransportID at ``offset`` (its length follows from its protocol)."""
        need(buf, offset + 1, "TransportID")
        b0 = buf[offset]
        proto, fmt = b0 & 0x0F, b0 >> 6
        if proto == 5:
            need(buf, offset + 4, "iSCSI TransportID header")
            size = 4 + u16(buf, offset + 2)
        else:
            size = 24
        end = offset + size
        if end > len(buf):
            raise DecodeError(f"TransportID at {offset}: {size} bytes run past the data")
        return cls(proto, bytes(buf[offset + 1 : end]), fmt), end

    @classmethod
    def from_bytes(cls, buf: Bytes) -> TransportId:
        """Parse exactly one TransportID."""
        tid, end = cls.parse(buf)
        if end != len(buf):
            raise DecodeError(f"TransportID: {len(buf) - end} bytes after it")
        return tid


def _keys(_inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 64)


@frozen
class PrOutParameters:
    """The basic PERSISTENT RESERVE OUT parameter list (24 bytes, more with SPEC_I_PT).

    Attributes:
        reservation_key: 64 bits.
        service_action_reservation_key: 64 bits (the new key for REGISTER, the key to
            preempt for PREEMPT).
        spec_i_pt: the list names further initiator ports (``transport_ids``).
        all_tg_pt: register on every target port.
        aptpl: activate persist through power loss.
        transport_ids: the initiator ports for SPEC_I_PT.
    """

    reservation_key: int = field(default=0, validator=uint_field(64))
    service_action_reservation_key: int = field(default=0, validator=uint_field(64))
    spec_i_pt: bool = field(default=False, validator=flag_field)
    all_tg_pt: bool = field(default=False, validator=flag_field)
    aptpl: bool = field(default=False, validator=flag_field)
    transport_ids: tuple[TransportId, ...] = field(
        default=(), converter=_tid_tuple, validator=items_of(TransportId)
    )

    def __attrs_post_init__(self) -> None:
        if self.transport_ids and not self.spec_i_pt:
            raise ValueError("transport_ids need spec_i_pt")

    def to_bytes(self) -> bytes:
        """Encode the parameter list."""
        out = (
            self.reservation_key.to_bytes(8, "big")
            + self.service_action_reservation_key.to_bytes(8, "big")
            + bytes(4)
            + bytes(((self.spec_i_pt << 3) | (self.all_tg_pt << 2) | int(self.aptpl), 0, 0, 0))
        )
        if self.spec_i_pt:
            ids = b"".join(t.to_bytes() for t in self.transport_ids)
            out += len(ids).to_bytes(4, "big") + ids
        return out

    @classmethod
    def from_bytes(cls, buf: Bytes) -> PrOutParameters:
        """Parse the parameter list."""
        need(buf, 24, "PERSISTENT RESERVE OUT parameters")
        check_reserved(buf, "PERSISTENT RESERVE OUT parameters", (20, 0xF2), (21, 0xFF))
        spec = bool(buf[20] & 0x08)
        ids: list[TransportId] = []
        if spec:
            need(buf, 28, "SPEC_I_PT transport ID list length")
            length = u32(buf, 24)
            end = 28 + length
            if end != len(buf):
                raise DecodeError(
                    f"TRANSPORTID PARAMETER DATA LENGTH {length} disagrees with the "
                    f"{len(buf)}-byte list"
                )
            offset = 28
            while offset < end:
                tid, offset = TransportId.parse(buf, offset)
                ids.append(tid)
        elif len(buf) != 24:
            raise DecodeError(
                f"PERSISTENT RESERVE OUT parameters: 24 bytes expected, got {len(buf)}"
            )
        return cls(
            u64(buf, 0),
            u64(buf, 8),
            spec,
            bool(buf[20] & 0x04),
            bool(buf[20] & 0x01),
            tuple(ids),
        )


@frozen
class RegisterAndMoveParameters:
    """The REGISTER AND MOVE parameter list.

    Attributes:
        reservation_key: 64 bits.
        service_action_reservation_key: 64 bits: the key registered for the new port.
        unreg: unregister the sending I_T nexus.
        aptpl: activate persist through power loss.
        relative_target_port: 16 bits: the target port of the new nexus.
        transport_id: the initiator port of the new nexus.
    """

    reservation_key: int = field(validator=uint_field(64))
    service_action_reservation_key: int = field(validator=uint_field(64))
    transport_id: TransportId = field(validator=instance_of(TransportId))
    relative_target_port: int = field(default=0, validator=uint_field(16))
    unreg: bool = field(default=False, validator=flag_field)
    aptpl: bool = field(default=False, validator=flag_field)

    def to_bytes(self) -> bytes:
        """Encode the parameter list."""
        tid = self.transport_id.to_bytes()
        return (
            self.reservation_key.to_bytes(8, "big")
            + self.service_action_reservation_key.to_bytes(8, "big")
            + bytes((0, (self.unreg << 1) | int(self.aptpl)))
            + self.relative_target_port.to_bytes(2, "big")
            + len(tid).to_bytes(4, "big")
            + tid
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> RegisterAndMoveParameters:
        """Parse the parameter list."""
        need(buf, 24, "REGISTER AND MOVE parameters")
        check_reserved(buf, "REGISTER AND MOVE parameters", (16, 0xFF), (17, 0xFC))
        length = u32(buf, 20)
        if 24 + length != len(buf):
            raise DecodeError(
                f"REGISTER AND MOVE: TRANSPORTID PARAMETER DATA LENGTH {length} disagrees "
                f"with the {len(buf)}-byte list"
            )
        return cls(
            u64(buf, 0),
            u64(buf, 8),
            TransportId.from_bytes(buf[24:]),
            u16(buf, 18),
            bool(buf[17] & 2),
            bool(buf[17] & 1),
        )


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
