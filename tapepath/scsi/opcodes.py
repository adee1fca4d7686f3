"""REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN A3h, service action 0Ch; SPC-4 6.35)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import ClassVar

from attrs import field, frozen
from attrs.validators import instance_of, optional

from tapepath.errors import DecodeError
from tapepath.scsi._wire import (
    Bytes,
    flag_field,
    items_of,
    need,
    parse_entries,
    u16,
    u32,
    uint_field,
)
from tapepath.scsi.cdb import check_opcode, check_reserved
from tapepath.scsi.inquiry import enum_or_int

__all__ = [
    "CommandTimeouts",
    "OneCommandSupport",
    "ReportSupportedOpcodes",
    "ReportingOptions",
    "Support",
    "SupportedCommand",
    "SupportedOpcodes",
]

_SA = 0x0C


class ReportingOptions(IntEnum):
    """REPORTING OPTIONS of the CDB."""

    ALL_COMMANDS = 0
    ONE_COMMAND = 1
    ONE_COMMAND_WITH_SERVICE_ACTION = 2
    ONE_COMMAND_SA_OR_NOT = 3


class Support(IntEnum):
    """SUPPORT field of the one-command form."""

    NOT_AVAILABLE = 0
    NOT_SUPPORTED = 1
    SUPPORTED = 3
    SUPPORTED_VENDOR_SPECIFIC = 5


def _options(value: int) -> int:
    return enum_or_int(ReportingOptions, value)


def _support(value: int) -> int:
    return enum_or_int(Support, value)


@frozen
class ReportSupportedOpcodes:
    """The REPORT SUPPORTED OPERATION CODES CDB (12 bytes).

    Attributes:
        reporting_options: :class:`ReportingOptions` (3 bits).
        requested_opcode: the command asked about (one-command forms).
        requested_service_action: 16 bits (one-command forms with a service action).
        rctd: return command timeouts descriptors.
        allocation_length: 32 bits.
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0xA3
    SERVICE_ACTION: ClassVar[int] = _SA
    reporting_options: int = field(default=0, converter=_options, validator=uint_field(3))
    requested_opcode: int = field(default=0, validator=uint_field(8))
    requested_service_action: int = field(default=0, validator=uint_field(16))
    rctd: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=8192, validator=uint_field(32))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return (
            bytes(
                (
                    self.OPCODE,
                    _SA,
                    (self.rctd << 7) | int(self.reporting_options),
                    self.requested_opcode,
                )
            )
            + self.requested_service_action.to_bytes(2, "big")
            + self.allocation_length.to_bytes(4, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReportSupportedOpcodes:
        """Parse the CDB."""
        check_opcode(cdb, cls.OPCODE, 12, "REPORT SUPPORTED OPERATION CODES")
        if cdb[1] != _SA:
            raise DecodeError(
                f"REPORT SUPPORTED OPERATION CODES: byte 1 must be 0Ch, got {cdb[1]:02X}h"
            )
        check_reserved(cdb, "REPORT SUPPORTED OPERATION CODES", (2, 0x78), (10, 0xFF))
        return cls(cdb[2] & 7, cdb[3], u16(cdb, 4), bool(cdb[2] & 0x80), u32(cdb, 6), cdb[11])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class CommandTimeouts:
    """A command timeouts descriptor (12 bytes).

    Attributes:
        nominal: nominal command processing timeout, seconds (32 bits).
        recommended: recommended command timeout, seconds (32 bits).
        command_specific: 8 bits.
    """

    nominal: int = field(default=0, validator=uint_field(32))
    recommended: int = field(default=0, validator=uint_field(32))
    command_specific: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Encode the descriptor."""
        return (
            b"\x00\x0a\x00"
            + bytes((self.command_specific,))
            + self.nominal.to_bytes(4, "big")
            + self.recommended.to_bytes(4, "big")
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> CommandTimeouts:
        """Parse the 12-byte descriptor (its length field must be 0Ah)."""
        need(buf, 12, "command timeouts descriptor")
        if u16(buf, 0) != 0x0A:
            raise DecodeError(f"command timeouts descriptor: length {u16(buf, 0)}, 10 expected")
        return cls(u32(buf, 4), u32(buf, 8), buf[3])


_timeouts_validator = optional(instance_of(CommandTimeouts))


@frozen
class SupportedCommand:
    """One command descriptor of the all-commands form.

    Attributes:
        opcode: 8 bits.
        cdb_length: 16 bits.
        service_action: 16 bits (meaningful when ``service_action_valid``).
        service_action_valid: SERVACTV.
        timeouts: the command timeouts descriptor (CTDP), or None.
    """

    opcode: int = field(validator=uint_field(8))
    cdb_length: int = field(validator=uint_field(16))
    service_action: int = field(default=0, validator=uint_field(16))
    service_action_valid: bool = field(default=False, validator=flag_field)
    timeouts: CommandTimeouts | None = field(default=None, validator=_timeouts_validator)

    def to_bytes(self) -> bytes:
        """Encode the descriptor (8 bytes, 20 with timeouts)."""
        out = (
            bytes((self.opcode, 0))
            + self.service_action.to_bytes(2, "big")
            + bytes((0, ((self.timeouts is not None) << 1) | int(self.service_action_valid)))
            + self.cdb_length.to_bytes(2, "big")
        )
        return out + (self.timeouts.to_bytes() if self.timeouts else b"")

    @classmethod
    def parse(cls, buf: Bytes, offset: int = 0) -> tuple[SupportedCommand, int]:
        """Parse the descriptor at ``offset``; return it and the offset after it."""
        need(buf, offset + 8, "command descriptor")
        ctdp = bool(buf[offset + 5] & 2)
        end = offset + (20 if ctdp else 8)
        timeouts = CommandTimeouts.from_bytes(buf[offset + 8 : end]) if ctdp else None
        return (
            cls(
                buf[offset],
                u16(buf, offset + 6),
                u16(buf, offset + 2),
                bool(buf[offset + 5] & 1),
                timeouts,
            ),
            end,
        )


def _command_tuple(value: Iterable[SupportedCommand]) -> tuple[SupportedCommand, ...]:
    return tuple(value)


@frozen
class SupportedOpcodes:
    """The all-commands parameter data: every supported command."""

    commands: tuple[SupportedCommand, ...] = field(
        default=(), converter=_command_tuple, validator=items_of(SupportedCommand)
    )

    def find(self, opcode: int, service_action: int | None = None) -> SupportedCommand | None:
        """The descriptor of a command (and service action), or None."""
        for c in self.commands:
            if c.opcode == opcode and (
                service_action is None
                or (c.service_action_valid and c.service_action == service_action)
            ):
                return c
        return None

    def to_bytes(self) -> bytes:
        """Encode the data."""
        body = b"".join(c.to_bytes() for c in self.commands)
        return len(body).to_bytes(4, "big") + body

    @classmethod
    def from_bytes(cls, buf: Bytes) -> SupportedOpcodes:
        """Parse the data; a list cut by the allocation length keeps its whole descriptors."""
        need(buf, 4, "supported operation codes data")
        length = u32(buf, 0)
        end = min(len(buf), 4 + length)
        complete = end == 4 + length
        found = parse_entries(bytes(buf[:end]), 4, end, SupportedCommand.parse, complete=complete)
        return cls(found)


@frozen
class OneCommandSupport:
    """The one-command parameter data.

    Attributes:
        support: :class:`Support` (3 bits).
        cdb_usage: the CDB USAGE DATA bitmap (its first byte is the opcode).
        timeouts: the command timeouts descriptor (CTDP), or None.
        cdlp: command duration limit page (2 bits, SPC-5).
    """

    support: int = field(default=3, converter=_support, validator=uint_field(3))
    cdb_usage: bytes = field(default=b"", converter=bytes)
    timeouts: CommandTimeouts | None = field(default=None, validator=_timeouts_validator)
    cdlp: int = field(default=0, validator=uint_field(2))

    def __attrs_post_init__(self) -> None:
        if len(self.cdb_usage) > 0xFFFF:
            raise ValueError("cdb_usage: too long")

    def to_bytes(self) -> bytes:
        """Encode the data."""
        out = (
            bytes((0, ((self.timeouts is not None) << 7) | (self.cdlp << 3) | int(self.support)))
            + len(self.cdb_usage).to_bytes(2, "big")
            + self.cdb_usage
        )
        return out + (self.timeouts.to_bytes() if self.timeouts else b"")

    @classmethod
    def from_bytes(cls, buf: Bytes) -> OneCommandSupport:
        """Parse the data."""
        need(buf, 4, "one-command support data")
        size = u16(buf, 2)
        need(buf, 4 + size, "CDB usage data")
        ctdp = bool(buf[1] & 0x80)
        timeouts = None
        if ctdp:
            timeouts = CommandTimeouts.from_bytes(buf[4 + size : 16 + size])
        return cls(buf[1] & 7, bytes(buf[4 : 4 + size]), timeouts, (buf[1] >> 3) & 3)
