"""Builders for the PDUs a target sends, for the sans-I/O unit tests (no sockets)."""

from __future__ import annotations

from tapepath.iscsi.opcodes import Opcode
from tapepath.iscsi.pdu import NO_TAG, Pdu
from tapepath.iscsi.text import encode_text


def words(*values: int) -> tuple[int, ...]:
    """Pad to the seven words of bytes 20..47."""
    return tuple(values) + (0,) * (7 - len(values))


def login_response(
    itt: int,
    *,
    csg: int,
    nsg: int,
    transit: bool,
    keys: list[tuple[str, str]],
    stat_sn: int = 100,
    status: tuple[int, int] = (0, 0),
    tsih: int = 0x1234,
    isid: int = 0,
    cont: bool = False,
) -> Pdu:
    """A Login Response."""
    flags = (0x80 if transit else 0) | (0x40 if cont else 0) | (csg << 2) | (nsg if transit else 0)
    return Pdu(
        Opcode.LOGIN_RESPONSE,
        flags=flags,
        lun=(isid << 16) | tsih,
        itt=itt,
        words=words(0, stat_sn, 1, 8, status[0] << 24 | status[1] << 16),
        data=encode_text(keys),
    )


def data_in(
    itt: int,
    data: bytes,
    *,
    offset: int,
    data_sn: int,
    status: int | None = None,
    stat_sn: int = 0,
    exp: int = 1,
    mx: int = 64,
    residual: tuple[int, int] = (0, 0),
) -> Pdu:
    """A Data-In PDU, with status (S and F) when ``status`` is given."""
    flags = 0
    if status is not None:
        flags = 0x81 | residual[0]
    return Pdu(
        Opcode.DATA_IN,
        flags=flags,
        b3=status or 0,
        itt=itt,
        words=words(NO_TAG, stat_sn, exp, mx, data_sn, offset, residual[1]),
        data=data,
    )


def scsi_response(
    itt: int,
    *,
    status: int = 0,
    stat_sn: int = 0,
    exp: int = 1,
    mx: int = 64,
    sense: bytes = b"",
    residual: tuple[int, int] = (0, 0),
    response: int = 0,
) -> Pdu:
    """A SCSI Response (residual = (flag bits, count))."""
    data = (len(sense).to_bytes(2, "big") + sense) if sense else b""
    return Pdu(
        Opcode.SCSI_RESPONSE,
        flags=0x80 | residual[0],
        b2=response,
        b3=status,
        itt=itt,
        words=words(0, stat_sn, exp, mx, 0, 0, residual[1]),
        data=data,
    )


def r2t(
    itt: int, *, ttt: int, r2t_sn: int, offset: int, length: int, stat_sn: int = 0, mx: int = 64
) -> Pdu:
    """An R2T."""
    return Pdu(
        Opcode.R2T,
        flags=0x80,
        itt=itt,
        words=(ttt, stat_sn, 1, mx, r2t_sn, offset, length),
    )


def nop_in(
    itt: int, *, ttt: int = NO_TAG, stat_sn: int = 0, mx: int = 64, data: bytes = b""
) -> Pdu:
    """A NOP-In."""
    return Pdu(
        Opcode.NOP_IN,
        flags=0x80,
        itt=itt,
        lun=0,
        words=words(ttt, stat_sn, 1, mx),
        data=data,
    )


def reject(rejected: bytes, *, reason: int, stat_sn: int = 0, exp: int = 1, mx: int = 64) -> Pdu:
    """A Reject carrying the rejected PDU's header as its data segment."""
    return Pdu(
        Opcode.REJECT,
        flags=0x80,
        b2=reason,
        itt=NO_TAG,
        words=words(NO_TAG, stat_sn, exp, mx, 0, 0, 0),
        data=rejected,
    )
