"""PERSISTENT RESERVE IN (5Eh) and OUT (5Fh): the CDBs.

The parameter lists PR OUT sends live in :mod:`tapepath.scsi.pr_out`, the data PR IN
returns in :mod:`tapepath.scsi.pr_in`, the service action and TYPE codes in
:mod:`tapepath.scsi.pr_codes`; this module re-exports them all, so every name of the
persistent reservation codecs imports from here.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import field, frozen

from tapepath.scsi._wire import Bytes, u16, u32, uint_field
from tapepath.scsi.cdb import ParameterListCommand, check_opcode, check_reserved, check_zero
from tapepath.scsi.pr_codes import (
    PrInAction,
    PrOutAction,
    PrType,
    _in_action,
    _out_action,
    _pr_type,
)
from tapepath.scsi.pr_in import (
    FullStatusDescriptor,
    ReadFullStatus,
    ReadKeys,
    ReadReservation,
    ReportCapabilities,
)
from tapepath.scsi.pr_out import PrOutParameters, RegisterAndMoveParameters, TransportId

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
