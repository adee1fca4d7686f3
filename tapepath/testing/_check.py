"""The typed CHECK CONDITION the device models raise.

Device models in :mod:`tapepath.testing` work on values, not bytes: when a command
fails they raise :class:`Check`; the SCSI front end turns it into a CHECK CONDITION
response with fixed-format sense data.
"""

from __future__ import annotations

from tapepath.scsi.sense import SenseKey, fixed_sense

__all__ = ["Check", "SenseKey", "invalid_field", "invalid_opcode"]


class Check(Exception):
    """A command ends in CHECK CONDITION with this sense.

    Attributes:
        key: the sense key.
        asc: additional sense code.
        ascq: additional sense code qualifier.
        information: the INFORMATION field (a residual for tape commands), or None.
        filemark: the FILEMARK bit.
        eom: the EOM bit.
        ili: the ILI bit.
        data: data transferred before the condition (for READ), returned with it.
        field_pointer: for ILLEGAL REQUEST, the CDB byte in error (sense-key specific).
    """

    def __init__(
        self,
        key: int,
        asc: int,
        ascq: int,
        *,
        information: int | None = None,
        filemark: bool = False,
        eom: bool = False,
        ili: bool = False,
        data: bytes = b"",
        field_pointer: int | None = None,
    ) -> None:
        super().__init__(f"sense {key:X}/{asc:02X}/{ascq:02X}")
        self.key = key
        self.asc = asc
        self.ascq = ascq
        self.information = information
        self.filemark = filemark
        self.eom = eom
        self.ili = ili
        self.data = data
        self.field_pointer = field_pointer

    def sense(self) -> bytes:
        """The fixed-format sense bytes for this condition."""
        sks = None
        if self.field_pointer is not None:
            sks = bytes((0xC0, self.field_pointer >> 8, self.field_pointer & 0xFF))
        info = self.information
        if info is not None and not -(1 << 31) < info < (1 << 32):
            info = None  # does not fit the fixed format's 4 bytes: VALID stays clear
        return fixed_sense(
            self.key,
            self.asc,
            self.ascq,
            information=info,
            filemark=self.filemark,
            eom=self.eom,
            ili=self.ili,
            sks=sks,
        )


def invalid_field(byte: int | None = None) -> Check:
    """ILLEGAL REQUEST 24/00, INVALID FIELD IN CDB."""
    return Check(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00, field_pointer=byte)


def invalid_opcode() -> Check:
    """ILLEGAL REQUEST 20/00, INVALID COMMAND OPERATION CODE."""
    return Check(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00, field_pointer=0)
