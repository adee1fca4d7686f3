"""The shape every CDB class follows, and the commands that belong to no command set.

A CDB class is an attrs ``@frozen`` value with:

- ``OPCODE``: a ``ClassVar[int]``;
- fields with range validators (a value that does not fit raises ValueError naming it);
- ``to_bytes() -> bytes``: the CDB;
- ``from_bytes(cdb) -> Self`` (classmethod): parse a CDB, raising DecodeError for a wrong
  opcode, a short CDB or reserved bits set; used by the virtual library and the tests;
- ``data_in_length``: the allocation/transfer length the command reads (0 for none).

Response data classes follow the same pair: ``to_bytes()`` and ``from_bytes(buf)``.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, uint_field

__all__ = [
    "Command",
    "ParameterListCommand",
    "RequestSense",
    "TestUnitReady",
    "check_opcode",
    "check_reserved",
    "check_reserved_bits",
    "check_zero",
]


class Command(Protocol):
    """What every CDB class provides."""

    OPCODE: ClassVar[int]

    def to_bytes(self) -> bytes:
        """The CDB bytes."""
        ...

    @property
    def data_in_length(self) -> int:
        """How many bytes the command may read from the device (0: none)."""
        ...


def check_opcode(cdb: Bytes, opcode: int, length: int, name: str) -> None:
    """Raise DecodeError unless ``cdb`` is ``length`` bytes long and starts with ``opcode``.

    Args:
        cdb: the CDB to check.
        opcode: the expected operation code.
        length: the expected CDB length.
        name: the command's name, for the message.
    """
    if len(cdb) != length:
        raise DecodeError(f"{name}: a CDB of {length} bytes expected, got {len(cdb)}")
    if cdb[0] != opcode:
        raise DecodeError(f"{name}: opcode {opcode:02X}h expected, got {cdb[0]:02X}h")


@frozen
class TestUnitReady:
    """TEST UNIT READY (00h, SPC): is the logical unit ready?"""

    __test__: ClassVar[bool] = False  # not a pytest class, whatever its name says

    OPCODE: ClassVar[int] = 0x00
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((0x00, 0, 0, 0, 0, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> TestUnitReady:
        """Parse a TEST UNIT READY CDB."""
        check_opcode(cdb, cls.OPCODE, 6, "TEST UNIT READY")
        if any(cdb[1:5]):
            raise DecodeError("TEST UNIT READY: reserved bytes 1-4 are not zero")
        return cls(control=cdb[5])

    @property
    def data_in_length(self) -> int:
        """TEST UNIT READY transfers no data."""
        return 0


def check_reserved(cdb: Bytes, name: str, *spans: tuple[int, int]) -> None:
    """Raise DecodeError when a reserved bit is set in a CDB or a parameter list.

    Args:
        cdb: the bytes being parsed.
        name: the command's or structure's name, for the message.
        spans: ``(offset, mask)`` pairs: the bits of ``mask`` in byte ``offset`` are reserved.
    """
    for offset, mask in spans:
        if offset < len(cdb) and cdb[offset] & mask:
            raise DecodeError(
                f"{name}: reserved bits {mask:02X}h of byte {offset} are set ({cdb[offset]:02X}h)"
            )


def check_reserved_bits(cdb: Bytes, name: str, spec: dict[int, int]) -> None:
    """Raise DecodeError when a reserved bit is set in a CDB of a checked length.

    Args:
        cdb: the CDB (its length already checked to cover every byte of ``spec``).
        name: the command's name, for the message.
        spec: maps a byte offset to the mask of its reserved bits.
    """
    for index, mask in spec.items():
        if cdb[index] & mask:
            raise DecodeError(f"{name}: reserved bits set in byte {index} ({cdb[index]:02X}h)")


def check_zero(cdb: Bytes, name: str, start: int, end: int) -> None:
    """Raise DecodeError unless bytes ``start`` .. ``end - 1`` of ``cdb`` are all zero."""
    if any(cdb[start:end]):
        raise DecodeError(f"{name}: reserved bytes {start}..{end - 1} are not zero")


@frozen
class RequestSense:
    """REQUEST SENSE (03h, SPC): fetch the sense data of the last command.

    Attributes:
        desc: ask for descriptor-format sense data (DESC bit).
        allocation_length: how many bytes of sense data to return (0..255).
        control: the CONTROL byte.
    """

    OPCODE: ClassVar[int] = 0x03
    desc: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=252, validator=uint_field(8))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 6-byte CDB."""
        return bytes((self.OPCODE, int(self.desc), 0, 0, self.allocation_length, self.control))

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> RequestSense:
        """Parse a REQUEST SENSE CDB (DecodeError on a wrong opcode, length or reserved bits)."""
        check_opcode(cdb, cls.OPCODE, 6, "REQUEST SENSE")
        check_reserved(cdb, "REQUEST SENSE", (1, 0xFE))
        check_zero(cdb, "REQUEST SENSE", 2, 4)
        return cls(desc=bool(cdb[1] & 1), allocation_length=cdb[4], control=cdb[5])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


class ParameterListCommand:
    """What a CDB that sends a parameter list (data-out) shares.

    A command class (attrs ``@frozen``) sets ``NAME`` and has a ``parameter_list_length``
    field; this base adds the data-out check and the transfer lengths. Used by MODE
    SELECT(6)/(10), PERSISTENT RESERVE OUT and SET TARGET PORT GROUPS.
    """

    __slots__ = ()

    NAME: ClassVar[str]
    parameter_list_length: int

    def check_data_out(self, data: Bytes) -> None:
        """Raise ValueError unless ``data`` is exactly ``parameter_list_length`` bytes."""
        if len(data) != self.parameter_list_length:
            raise ValueError(
                f"{self.NAME}: parameter_list_length={self.parameter_list_length} "
                f"but the parameter data is {len(data)} bytes"
            )

    @property
    def data_in_length(self) -> int:
        """A command that sends a parameter list reads nothing."""
        return 0

    @property
    def data_out_length(self) -> int:
        """The parameter list length."""
        return self.parameter_list_length
