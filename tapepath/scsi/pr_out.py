"""PERSISTENT RESERVE OUT parameter lists (SPC-4 6.15): the basic list, REGISTER AND
MOVE's list, and the TransportID they carry."""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen
from attrs.validators import instance_of

from tapepath.errors import DecodeError
from tapepath.scsi._wire import (
    Bytes,
    check_uint,
    flag_field,
    items_of,
    need,
    u16,
    u32,
    u64,
    uint_field,
)
from tapepath.scsi.cdb import check_reserved

__all__ = ["PrOutParameters", "RegisterAndMoveParameters", "TransportId"]


def _tid_tuple(value: Iterable[TransportId]) -> tuple[TransportId, ...]:
    return tuple(value)


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
