"""The iSCSI PDU codec (RFC 7143 section 11): Basic Header Segment, AHS, padding, digests.

Every opcode shares one 48-byte Basic Header Segment layout; the codec reads and
writes it generically into a :class:`Pdu` value and names the opcode-specific words
through properties (``cmd_sn``, ``stat_sn``, ``buffer_offset``, ...). Decoding is
bounded: the data segment may not exceed the caller's negotiated limit, an AHS may
not run past the PDU and an unknown opcode is refused, all with
:class:`~tapepath.errors.ProtocolError`.
"""

from __future__ import annotations

import struct
from typing import Final

from attrs import frozen

from tapepath.errors import ProtocolError
from tapepath.iscsi.digest import digest_bytes
from tapepath.iscsi.opcodes import INITIATOR_OPCODES, TARGET_OPCODES, Opcode
from tapepath.scsi._wire import Bytes

__all__ = [
    "BHS_LEN",
    "BHS_STRUCT",
    "NO_TAG",
    "FrameDecoder",
    "Header",
    "Pdu",
    "decode_header",
    "decode_pdu",
    "encode_pdu",
    "frame",
    "padding",
]

BHS_LEN: Final = 48
"""Length of the Basic Header Segment."""
NO_TAG: Final = 0xFFFFFFFF
"""The reserved tag value (no ITT / no TTT)."""
MAX_AHS: Final = 255 * 4
"""The largest AHS a header can announce (TotalAHSLength is one byte of 4-byte words)."""

_BHS = struct.Struct(">BBBBBBHQI7I")
BHS_STRUCT: Final = _BHS
"""The BHS layout: byte 0, flags, b2, b3, AHS words, DSL high byte, DSL low 16 bits,
bytes 8..15, ITT, then the seven words of bytes 20..47."""
_CDB16 = struct.Struct(">4I")
_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")
_KNOWN = frozenset(int(o) for o in Opcode)


def padding(length: int) -> int:
    """Bytes of padding that follow a segment of ``length`` bytes (0..3)."""
    return -length & 3


@frozen
class Pdu:
    """One iSCSI PDU: the Basic Header Segment fields, the AHS and the data segment.

    Attributes:
        opcode: the six-bit opcode.
        flags: byte 1 (the F bit and the opcode-specific flags).
        immediate: the I bit (immediate delivery).
        b2: byte 2 (opcode-specific: response, reason, TMF response, version).
        b3: byte 3 (opcode-specific: SCSI status, version).
        lun: bytes 8..15 as one big-endian integer (LUN, or ISID and TSIH for login).
        itt: the Initiator Task Tag.
        words: bytes 20..47 as seven big-endian 32-bit words (checked when encoded).
        ahs: the Additional Header Segments, each already padded to 4 bytes.
        data: the data segment, without padding.
    """

    opcode: int
    flags: int = 0
    immediate: bool = False
    b2: int = 0
    b3: int = 0
    lun: int = 0
    itt: int = NO_TAG
    words: tuple[int, ...] = (0, 0, 0, 0, 0, 0, 0)
    ahs: bytes = b""
    data: Bytes = b""

    # -- named views of the opcode-specific words -----------------------------------
    @property
    def final(self) -> bool:
        """The F bit."""
        return bool(self.flags & 0x80)

    @property
    def ttt(self) -> int:
        """Target Transfer Tag (bytes 20..23), or the expected length of a SCSI Command."""
        return self.words[0]

    @property
    def cmd_sn(self) -> int:
        """CmdSN of an initiator PDU (bytes 24..27)."""
        return self.words[1]

    @property
    def stat_sn(self) -> int:
        """StatSN of a target PDU (bytes 24..27)."""
        return self.words[1]

    @property
    def exp_stat_sn(self) -> int:
        """ExpStatSN of an initiator PDU (bytes 28..31)."""
        return self.words[2]

    @property
    def exp_cmd_sn(self) -> int:
        """ExpCmdSN of a target PDU (bytes 28..31)."""
        return self.words[2]

    @property
    def max_cmd_sn(self) -> int:
        """MaxCmdSN of a target PDU (bytes 32..35)."""
        return self.words[3]

    @property
    def data_sn(self) -> int:
        """DataSN or R2TSN (bytes 36..39)."""
        return self.words[4]

    @property
    def buffer_offset(self) -> int:
        """Buffer Offset of Data-In, Data-Out and R2T (bytes 40..43)."""
        return self.words[5]

    @property
    def residual(self) -> int:
        """Residual Count (bytes 44..47), or an R2T's Desired Data Transfer Length."""
        return self.words[6]

    @property
    def cdb(self) -> bytes:
        """The CDB of a SCSI Command: bytes 32..47 plus an extended-CDB AHS if present."""
        base = _CDB16.pack(*self.words[3:7])
        if len(self.ahs) >= 4 and self.ahs[2] == 1:
            ahs_len = int.from_bytes(self.ahs[0:2], "big")
            return base + bytes(self.ahs[4 : 3 + ahs_len])
        return base

    @property
    def isid(self) -> int:
        """ISID of a login PDU (bytes 8..13)."""
        return self.lun >> 16

    @property
    def tsih(self) -> int:
        """TSIH of a login PDU (bytes 14..15), as the two bytes read big-endian."""
        return self.lun & 0xFFFF

    def __repr__(self) -> str:
        name = Opcode(self.opcode).name if self.opcode in _KNOWN else hex(self.opcode)
        return (
            f"Pdu({name}, flags=0x{self.flags:02x}, itt=0x{self.itt:08x}, "
            f"ahs={len(self.ahs)}, data={len(self.data)})"
        )


@frozen
class Header:
    """A decoded Basic Header Segment before its AHS and data segment are read.

    Attributes:
        pdu: the PDU with empty ``ahs`` and ``data``.
        ahs_length: bytes of AHS that follow the BHS.
        data_length: the DataSegmentLength (padding and digest not included).
    """

    pdu: Pdu
    ahs_length: int
    data_length: int


def encode_pdu(pdu: Pdu, *, header_digest: bool = False, data_digest: bool = False) -> list[Bytes]:
    """Encode a PDU as segments for ``socket.sendmsg`` (the data segment is not copied).

    Args:
        pdu: the PDU.
        header_digest: append a CRC32C after the header.
        data_digest: append a CRC32C after the padded data segment.

    Returns:
        The header (with AHS and header digest), then the data, then padding and data
        digest when there is a data segment.
    """
    if len(pdu.ahs) % 4 or len(pdu.ahs) > MAX_AHS:
        raise ValueError("AHS must be a multiple of 4 bytes and at most 1020")
    dlen = len(pdu.data)
    if dlen > 0xFFFFFF:
        raise ValueError("a data segment is at most 16 MiB - 1")
    w = pdu.words
    if len(w) != 7:
        raise ValueError("words must be seven 32-bit unsigned ints (bytes 20..47)")
    try:
        head = _BHS.pack(
            (0x40 if pdu.immediate else 0) | pdu.opcode,
            pdu.flags,
            pdu.b2,
            pdu.b3,
            len(pdu.ahs) // 4,
            dlen >> 16,
            dlen & 0xFFFF,
            pdu.lun,
            pdu.itt,
            w[0],
            w[1],
            w[2],
            w[3],
            w[4],
            w[5],
            w[6],
        )
    except struct.error as exc:
        raise ValueError(f"a BHS field does not fit: {exc}") from None
    if pdu.ahs:
        head += pdu.ahs
    return frame(head, pdu.data, header_digest=header_digest, data_digest=data_digest)


def frame(head: bytes, data: Bytes, *, header_digest: bool, data_digest: bool) -> list[Bytes]:
    """Segments for an encoded header (BHS and AHS) and its data segment.

    Adds the header digest, the padding and the data digest as negotiated.
    """
    if header_digest:
        head += digest_bytes(head)
    dlen = len(data)
    if not dlen:
        return [head]
    pad = _PADS[dlen & 3]
    if data_digest:
        return [head, data, pad + digest_bytes(data, pad)]
    if pad:
        return [head, data, pad]
    return [head, data]


def decode_header(bhs: Bytes, *, max_data: int, accept: frozenset[int] = TARGET_OPCODES) -> Header:
    """Decode a 48-byte Basic Header Segment.

    Args:
        bhs: exactly the 48 header bytes.
        max_data: the largest DataSegmentLength allowed (the negotiated
            MaxRecvDataSegmentLength, or the login limit).
        accept: the opcodes allowed in this direction (target opcodes by default).

    Raises:
        ProtocolError: a short header, an unknown or wrong-direction opcode, or a data
            segment longer than ``max_data``.
    """
    if len(bhs) != BHS_LEN:
        raise ProtocolError(f"a Basic Header Segment is 48 bytes, got {len(bhs)}")
    b0, flags, b2, b3, ahs_words, dhi, dlo, lun, itt, *words = _BHS.unpack(bhs)
    opcode = b0 & 0x3F
    if opcode not in accept:
        raise ProtocolError(f"unexpected iSCSI opcode 0x{opcode:02x}")
    dlen = dhi << 16 | dlo
    if dlen > max_data:
        raise ProtocolError(f"DataSegmentLength {dlen} exceeds the negotiated limit {max_data}")
    pdu = Pdu(opcode, flags, bool(b0 & 0x40), b2, b3, lun, itt, tuple(words))
    return Header(pdu, ahs_words * 4, dlen)


def decode_pdu(
    buf: Bytes,
    *,
    max_data: int,
    header_digest: bool = False,
    data_digest: bool = False,
    accept: frozenset[int] = TARGET_OPCODES,
) -> Pdu:
    """Decode one complete PDU held in ``buf`` (exactly one PDU, with digests).

    Raises:
        ProtocolError: anything :func:`decode_header` refuses, an AHS past the PDU, a
            length mismatch or a bad digest.
    """
    view = memoryview(buf)
    if len(view) < BHS_LEN:
        raise ProtocolError(f"a PDU is at least 48 bytes, got {len(view)}")
    hdr = decode_header(view[:BHS_LEN], max_data=max_data, accept=accept)
    total = frame_length(hdr, header_digest=header_digest, data_digest=data_digest)
    if total != len(view):
        raise ProtocolError(f"PDU length {len(view)} does not match its header ({total})")
    pos = BHS_LEN + hdr.ahs_length
    ahs = bytes(view[BHS_LEN:pos])
    check_ahs(ahs)
    if header_digest:
        if view[pos : pos + 4] != digest_bytes(view[:pos]):
            raise ProtocolError("header digest mismatch")
        pos += 4
    data = bytes(view[pos : pos + hdr.data_length])
    if hdr.data_length and data_digest:
        end = pos + hdr.data_length + padding(hdr.data_length)
        if view[end : end + 4] != digest_bytes(view[pos:end]):
            raise ProtocolError("data digest mismatch")
    p = hdr.pdu
    return Pdu(p.opcode, p.flags, p.immediate, p.b2, p.b3, p.lun, p.itt, p.words, ahs, data)


def check_ahs(ahs: Bytes) -> None:
    """Check that each AHS's AHSLength stays inside the AHS area.

    Raises:
        ProtocolError: an AHS runs past the end of the header.
    """
    pos = 0
    while pos < len(ahs):
        if pos + 3 >= len(ahs):
            raise ProtocolError("truncated AHS header")
        alen = int.from_bytes(ahs[pos : pos + 2], "big")
        end = pos + 3 + alen
        if end > len(ahs):
            raise ProtocolError(f"AHS of {alen} bytes runs past the PDU header")
        pos = end + padding(3 + alen)


def frame_length(hdr: Header, *, header_digest: bool, data_digest: bool) -> int:
    """Total bytes on the wire of the PDU whose header is ``hdr``."""
    n = BHS_LEN + hdr.ahs_length + (4 if header_digest else 0)
    if hdr.data_length:
        n += hdr.data_length + padding(hdr.data_length) + (4 if data_digest else 0)
    return n


class FrameDecoder:
    """Split a byte stream into PDUs (sans-I/O), holding at most one PDU at a time.

    Args:
        max_data: the largest data segment accepted.
        header_digest: whether headers carry a CRC32C.
        data_digest: whether data segments carry a CRC32C.
        accept: the opcodes allowed (target opcodes by default).
    """

    def __init__(
        self,
        *,
        max_data: int,
        header_digest: bool = False,
        data_digest: bool = False,
        accept: frozenset[int] = TARGET_OPCODES,
    ) -> None:
        self.max_data = max_data
        self.header_digest = header_digest
        self.data_digest = data_digest
        self.accept = accept
        self._buf = bytearray()
        self._need: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a PDU."""
        return len(self._buf)

    def feed(self, data: Bytes) -> list[Pdu]:
        """Add bytes; return the PDUs now complete.

        Raises:
            ProtocolError: the stream broke the protocol (the decoder is then unusable).
        """
        self._buf += data
        out: list[Pdu] = []
        while True:
            if self._need is None:
                if len(self._buf) < BHS_LEN:
                    return out
                hdr = decode_header(
                    memoryview(self._buf)[:BHS_LEN], max_data=self.max_data, accept=self.accept
                )
                self._need = frame_length(
                    hdr, header_digest=self.header_digest, data_digest=self.data_digest
                )
            if len(self._buf) < self._need:
                return out
            n = self._need
            chunk = bytes(self._buf[:n])
            del self._buf[:n]
            self._need = None
            out.append(
                decode_pdu(
                    chunk,
                    max_data=self.max_data,
                    header_digest=self.header_digest,
                    data_digest=self.data_digest,
                    accept=self.accept,
                )
            )


ALL_OPCODES: Final = INITIATOR_OPCODES | TARGET_OPCODES
"""Every defined opcode (for decoding either direction, e.g. in tests and tools)."""
