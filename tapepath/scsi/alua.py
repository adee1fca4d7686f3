"""Asymmetric logical unit access: REPORT / SET TARGET PORT GROUPS (SPC-4 6.37, 6.45)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

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
    uint_field,
)
from tapepath.scsi.cdb import ParameterListCommand, check_opcode, check_reserved, check_zero
from tapepath.scsi.inquiry import enum_or_int

__all__ = [
    "AccessState",
    "ReportTargetPortGroups",
    "SetTargetPortGroups",
    "StpgDescriptor",
    "StpgParameters",
    "TargetPortGroup",
    "TargetPortGroups",
    "TpgStatus",
]

_MAINTENANCE_IN = 0xA3
_MAINTENANCE_OUT = 0xA4
_SA = 0x0A


class AccessState(IntEnum):
    """ASYMMETRIC ACCESS STATE of a target port group."""

    ACTIVE_OPTIMIZED = 0x0
    ACTIVE_NON_OPTIMIZED = 0x1
    STANDBY = 0x2
    UNAVAILABLE = 0x3
    LBA_DEPENDENT = 0x4
    OFFLINE = 0xE
    TRANSITIONING = 0xF


class TpgStatus(IntEnum):
    """STATUS CODE of a target port group descriptor."""

    NO_STATUS = 0
    CHANGED_BY_SET_TARGET_PORT_GROUPS = 1
    CHANGED_BY_IMPLICIT_BEHAVIOR = 2


def _state(value: int) -> int:
    return enum_or_int(AccessState, value)


def _status(value: int) -> int:
    return enum_or_int(TpgStatus, value)


@frozen
class ReportTargetPortGroups:
    """REPORT TARGET PORT GROUPS (MAINTENANCE IN A3h, service action 0Ah, 12 bytes).

    Attributes:
        extended: ask for the extended header (PARAMETER DATA FORMAT 001b), which carries
            the implicit transition time.
        allocation_length: 32 bits.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = _MAINTENANCE_IN
    SERVICE_ACTION: ClassVar[int] = _SA
    extended: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=4096, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return (
            bytes((self.OPCODE, (self.extended << 5) | _SA, 0, 0, 0, 0))
            + self.allocation_length.to_bytes(4, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReportTargetPortGroups:
        """Parse the CDB (DecodeError for another service action or format)."""
        check_opcode(cdb, cls.OPCODE, 12, "REPORT TARGET PORT GROUPS")
        if cdb[1] & 0x1F != _SA:
            raise DecodeError(
                f"REPORT TARGET PORT GROUPS: service action 0Ah expected, got {cdb[1] & 0x1F:02X}h"
            )
        if cdb[1] >> 5 > 1:
            raise DecodeError(f"REPORT TARGET PORT GROUPS: parameter data format {cdb[1] >> 5}")
        check_zero(cdb, "REPORT TARGET PORT GROUPS", 2, 6)
        check_reserved(cdb, "REPORT TARGET PORT GROUPS", (10, 0xFF))
        return cls(bool(cdb[1] >> 5), u32(cdb, 6), cdb[11])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


def _ports(_inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    if len(value) > 255:
        raise ValueError(f"{attr.name}: at most 255 target ports fit in a group")
    for i, v in enumerate(value):
        check_uint(f"{attr.name}[{i}]", v, 16)


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@frozen
class TargetPortGroup:
    """A target port group descriptor.

    Attributes:
        tpg_id: TARGET PORT GROUP (16 bits).
        state: :class:`AccessState` (4 bits).
        pref: the preferred group (PREF bit).
        relative_target_ports: the RELATIVE TARGET PORT IDENTIFIERs of its ports.
        status: :class:`TpgStatus` (8 bits).
        t_sup, o_sup, lbd_sup, u_sup, s_sup, an_sup, ao_sup: the supported-states bits
            (transitioning, offline, LBA dependent, unavailable, standby, active/non-optimized,
            active/optimized).
        vendor_specific: byte 6.
    """

    tpg_id: int = field(validator=uint_field(16))
    state: int = field(default=0, converter=_state, validator=uint_field(4))
    pref: bool = field(default=False, validator=flag_field)
    relative_target_ports: tuple[int, ...] = field(
        default=(), converter=_int_tuple, validator=_ports
    )
    status: int = field(default=0, converter=_status, validator=uint_field(8))
    t_sup: bool = field(default=True, validator=flag_field)
    o_sup: bool = field(default=False, validator=flag_field)
    lbd_sup: bool = field(default=False, validator=flag_field)
    u_sup: bool = field(default=True, validator=flag_field)
    s_sup: bool = field(default=True, validator=flag_field)
    an_sup: bool = field(default=True, validator=flag_field)
    ao_sup: bool = field(default=True, validator=flag_field)
    vendor_specific: int = field(default=0, validator=uint_field(8))

    @property
    def supported_states(self) -> frozenset[AccessState]:
        """The states the supported-states bits announce."""
        bits = (
            (self.ao_sup, AccessState.ACTIVE_OPTIMIZED),
            (self.an_sup, AccessState.ACTIVE_NON_OPTIMIZED),
            (self.s_sup, AccessState.STANDBY),
            (self.u_sup, AccessState.UNAVAILABLE),
            (self.lbd_sup, AccessState.LBA_DEPENDENT),
            (self.o_sup, AccessState.OFFLINE),
            (self.t_sup, AccessState.TRANSITIONING),
        )
        return frozenset(state for on, state in bits if on)

    def to_bytes(self) -> bytes:
        """Encode the descriptor."""
        head = bytes(
            (
                (self.pref << 7) | int(self.state),
                (self.t_sup << 7)
                | (self.o_sup << 6)
                | (self.lbd_sup << 4)
                | (self.u_sup << 3)
                | (self.s_sup << 2)
                | (self.an_sup << 1)
                | int(self.ao_sup),
            )
        )
        return (
            head
            + self.tpg_id.to_bytes(2, "big")
            + bytes((0, int(self.status), self.vendor_specific, len(self.relative_target_ports)))
            + b"".join(b"\0\0" + p.to_bytes(2, "big") for p in self.relative_target_ports)
        )

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[TargetPortGroup, int]:
        """Parse the descriptor at ``offset``; return it and the offset after it."""
        need(buf, offset + 8, "target port group descriptor")
        count = buf[offset + 7]
        end = offset + 8 + 4 * count
        if end > len(buf):
            raise DecodeError(
                f"target port group descriptor at {offset}: {count} ports run past the data"
            )
        b0, b1 = buf[offset], buf[offset + 1]
        ports = tuple(u16(buf, offset + 8 + 4 * i + 2) for i in range(count))
        return (
            cls(
                tpg_id=u16(buf, offset + 2),
                state=b0 & 0x0F,
                pref=bool(b0 & 0x80),
                relative_target_ports=ports,
                status=buf[offset + 5],
                t_sup=bool(b1 & 0x80),
                o_sup=bool(b1 & 0x40),
                lbd_sup=bool(b1 & 0x10),
                u_sup=bool(b1 & 0x08),
                s_sup=bool(b1 & 0x04),
                an_sup=bool(b1 & 0x02),
                ao_sup=bool(b1 & 0x01),
                vendor_specific=buf[offset + 6],
            ),
            end,
        )


def _group_tuple(value: Iterable[TargetPortGroup]) -> tuple[TargetPortGroup, ...]:
    return tuple(value)


@frozen
class TargetPortGroups:
    """REPORT TARGET PORT GROUPS parameter data.

    Attributes:
        groups: the :class:`TargetPortGroup` descriptors.
        extended: the extended header format (FORMAT TYPE 001b).
        implicit_transition_time: seconds (extended header only).
    """

    groups: tuple[TargetPortGroup, ...] = field(
        default=(), converter=_group_tuple, validator=items_of(TargetPortGroup)
    )
    extended: bool = field(default=False, validator=flag_field)
    implicit_transition_time: int = field(default=0, validator=uint_field(8))

    def __attrs_post_init__(self) -> None:
        if self.implicit_transition_time and not self.extended:
            raise ValueError("implicit_transition_time needs the extended header")

    def group_of_port(self, relative_target_port: int) -> TargetPortGroup | None:
        """The group that holds a relative target port, or None."""
        for g in self.groups:
            if relative_target_port in g.relative_target_ports:
                return g
        return None

    def to_bytes(self) -> bytes:
        """Encode the data (RETURN DATA LENGTH counts the bytes after the first four)."""
        body = b"".join(g.to_bytes() for g in self.groups)
        if self.extended:
            body = bytes((0x10, self.implicit_transition_time, 0, 0)) + body
        return len(body).to_bytes(4, "big") + body

    @classmethod
    def from_bytes(cls, buf: Bytes) -> TargetPortGroups:
        """Parse the data; a list cut by the allocation length keeps its whole descriptors.

        The header format is recognised from FORMAT TYPE in byte 4 (extended when 1).
        """
        need(buf, 4, "REPORT TARGET PORT GROUPS data")
        length = u32(buf, 0)
        end = min(len(buf), 4 + length)
        complete = end == 4 + length
        extended = end >= 8 and (buf[4] >> 4) & 7 == 1
        offset, itt = 4, 0
        if extended:
            itt, offset = buf[5], 8
        groups = parse_entries(
            bytes(buf[:end]), offset, end, TargetPortGroup.parse, complete=complete
        )
        return cls(groups, extended, itt)


@frozen
class StpgDescriptor:
    """A SET TARGET PORT GROUPS descriptor: ask for a group's new state."""

    tpg_id: int = field(validator=uint_field(16))
    state: int = field(default=0, converter=_state, validator=uint_field(4))

    def to_bytes(self) -> bytes:
        """Encode the 4-byte descriptor."""
        return bytes((int(self.state), 0)) + self.tpg_id.to_bytes(2, "big")


def _stpg_tuple(value: Iterable[StpgDescriptor]) -> tuple[StpgDescriptor, ...]:
    return tuple(value)


@frozen
class StpgParameters:
    """SET TARGET PORT GROUPS parameter list: 4 reserved bytes, then the descriptors."""

    descriptors: tuple[StpgDescriptor, ...] = field(
        default=(), converter=_stpg_tuple, validator=items_of(StpgDescriptor)
    )

    def to_bytes(self) -> bytes:
        """Encode the parameter list."""
        return bytes(4) + b"".join(d.to_bytes() for d in self.descriptors)

    @classmethod
    def from_bytes(cls, buf: Bytes) -> StpgParameters:
        """Parse the parameter list (reserved bits must be zero)."""
        need(buf, 4, "SET TARGET PORT GROUPS parameters")
        if (len(buf) - 4) % 4:
            raise DecodeError(f"SET TARGET PORT GROUPS parameters: {len(buf)} bytes, not 4 + 4n")
        check_zero(buf, "SET TARGET PORT GROUPS parameters", 0, 4)
        found = []
        for off in range(4, len(buf), 4):
            check_reserved(buf, "SET TARGET PORT GROUPS descriptor", (off, 0xF0), (off + 1, 0xFF))
            found.append(StpgDescriptor(u16(buf, off + 2), buf[off] & 0x0F))
        return cls(tuple(found))


@frozen
class SetTargetPortGroups(ParameterListCommand):
    """SET TARGET PORT GROUPS (MAINTENANCE OUT A4h, service action 0Ah, 12 bytes)."""

    NAME: ClassVar[str] = "SET TARGET PORT GROUPS"
    OPCODE: ClassVar[int] = _MAINTENANCE_OUT
    SERVICE_ACTION: ClassVar[int] = _SA
    parameter_list_length: int = field(default=4, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    @classmethod
    def for_parameters(
        cls, params: StpgParameters, *, control: int = 0
    ) -> tuple[SetTargetPortGroups, bytes]:
        """The CDB and the data-out bytes for ``params``."""
        data = params.to_bytes()
        return cls(len(data), control), data

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return (
            bytes((self.OPCODE, _SA, 0, 0, 0, 0))
            + self.parameter_list_length.to_bytes(4, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> SetTargetPortGroups:
        """Parse the CDB."""
        check_opcode(cdb, cls.OPCODE, 12, "SET TARGET PORT GROUPS")
        if cdb[1] != _SA:
            raise DecodeError(f"SET TARGET PORT GROUPS: byte 1 must be 0Ah, got {cdb[1]:02X}h")
        check_zero(cdb, "SET TARGET PORT GROUPS", 2, 6)
        check_reserved(cdb, "SET TARGET PORT GROUPS", (10, 0xFF))
        return cls(u32(cdb, 6), cdb[11])
