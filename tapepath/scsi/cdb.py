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
from tapepath.scsi._wire import Bytes, uint_field

__all__ = ["Command", "TestUnitReady", "check_opcode"]


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
