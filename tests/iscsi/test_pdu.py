"""The PDU codec: layout, padding, digests and hostile input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import ProtocolError
from tapepath.iscsi.digest import crc32c, digest_bytes
from tapepath.iscsi.opcodes import INITIATOR_OPCODES, TARGET_OPCODES, Opcode
from tapepath.iscsi.pdu import (
    ALL_OPCODES,
    BHS_LEN,
    FrameDecoder,
    Pdu,
    decode_header,
    decode_pdu,
    encode_pdu,
)


def wire(pdu: Pdu, **kw: bool) -> bytes:
    return b"".join(bytes(s) for s in encode_pdu(pdu, **kw))


pdus = st.builds(
    Pdu,
    opcode=st.sampled_from(sorted(int(o) for o in Opcode)),
    flags=st.integers(0, 255),
    immediate=st.booleans(),
    b2=st.integers(0, 255),
    b3=st.integers(0, 255),
    lun=st.integers(0, 2**64 - 1),
    itt=st.integers(0, 2**32 - 1),
    words=st.tuples(*[st.integers(0, 2**32 - 1)] * 7),
    data=st.binary(max_size=300),
)


class TestDigest:
    """CRC32C as iSCSI puts it on the wire."""

    def test_rfc_vector_zeros(self) -> None:
        """32 zero bytes give aa 36 91 8a on the wire (RFC 3720 B.4)."""
        assert digest_bytes(bytes(32)) == bytes.fromhex("aa36918a")

    def test_rfc_vector_ones(self) -> None:
        """32 bytes of FFh give 43 ab a8 62 on the wire (RFC 3720 B.4)."""
        assert digest_bytes(b"\xff" * 32) == bytes.fromhex("43aba862")

    def test_parts_equal_whole(self) -> None:
        """Digesting in parts equals digesting the concatenation."""
        assert crc32c(b"abc", b"def") == crc32c(b"abcdef")


class TestLayout:
    """Field positions in the Basic Header Segment."""

    def test_scsi_command_fields(self) -> None:
        """Opcode, I bit, DSL, LUN, ITT and words land at their RFC offsets."""
        pdu = Pdu(
            Opcode.SCSI_COMMAND,
            flags=0xC1,
            immediate=True,
            lun=2 << 48,
            itt=0x01020304,
            words=(512, 7, 9, 0x12000000, 0, 0, 0),
            data=b"hello",
        )
        raw = wire(pdu)
        assert raw[0] == 0x41
        assert raw[1] == 0xC1
        assert raw[5:8] == b"\x00\x00\x05"
        assert raw[8:16] == b"\x00\x02" + bytes(6)
        assert raw[16:20] == bytes.fromhex("01020304")
        assert struct.unpack(">I", raw[20:24])[0] == 512
        assert struct.unpack(">I", raw[24:28])[0] == 7
        assert raw[32] == 0x12
        assert raw[48:] == b"hello\0\0\0"
        assert len(raw) == BHS_LEN + 8

    def test_header_digest_covers_header(self) -> None:
        """The header digest follows the BHS and is the CRC32C of it."""
        raw = wire(Pdu(Opcode.NOP_OUT, flags=0x80), header_digest=True)
        assert len(raw) == 52
        assert raw[48:52] == digest_bytes(raw[:48])

    def test_data_digest_covers_padding(self) -> None:
        """The data digest covers the data and its padding."""
        raw = wire(Pdu(Opcode.NOP_OUT, data=b"abcde"), data_digest=True)
        assert raw[56:60] == digest_bytes(b"abcde\0\0\0")

    def test_cdb_property_with_extended_ahs(self) -> None:
        """A CDB longer than 16 bytes is rebuilt from the extended-CDB AHS."""
        cdb = bytes(range(1, 21))
        ext = cdb[16:]
        ahs = (len(ext) + 1).to_bytes(2, "big") + b"\x01\x00" + ext
        pdu = Pdu(
            Opcode.SCSI_COMMAND,
            words=(0, 0, 0, *struct.unpack(">4I", cdb[:16])),
            ahs=ahs + b"\0" * (-len(ahs) % 4),
        )
        back = decode_pdu(wire(pdu), max_data=0, accept=INITIATOR_OPCODES)
        assert back.cdb == cdb


class TestRoundTrip:
    """encode -> decode gives the same PDU."""

    @given(pdus, st.booleans(), st.booleans())
    def test_any_pdu(self, pdu: Pdu, hd: bool, dd: bool) -> None:
        """Every opcode round-trips with and without digests."""
        back = decode_pdu(
            wire(pdu, header_digest=hd, data_digest=dd),
            max_data=300,
            header_digest=hd,
            data_digest=dd,
            accept=ALL_OPCODES,
        )
        assert back == pdu

    @given(st.lists(pdus, max_size=5), st.integers(1, 97))
    def test_stream_in_pieces(self, items: list[Pdu], step: int) -> None:
        """A stream fed in arbitrary pieces yields the same PDUs in order."""
        stream = b"".join(wire(p, header_digest=True, data_digest=True) for p in items)
        dec = FrameDecoder(max_data=300, header_digest=True, data_digest=True, accept=ALL_OPCODES)
        out: list[Pdu] = []
        for i in range(0, len(stream), step):
            out += dec.feed(stream[i : i + step])
        assert out == items
        assert dec.buffered == 0


class TestHostile:
    """Bad bytes give ProtocolError and nothing else."""

    def test_data_segment_over_limit(self) -> None:
        """A DataSegmentLength above the negotiated limit is refused from the header alone."""
        raw = wire(Pdu(Opcode.DATA_IN, data=bytes(9000)))
        with pytest.raises(ProtocolError, match="exceeds"):
            decode_header(raw[:48], max_data=8192)

    def test_unknown_opcode(self) -> None:
        """An undefined opcode is refused."""
        raw = bytearray(wire(Pdu(Opcode.NOP_IN)))
        raw[0] = 0x3A
        with pytest.raises(ProtocolError, match="opcode"):
            decode_pdu(raw, max_data=0)

    def test_wrong_direction(self) -> None:
        """An initiator opcode coming from a target is refused."""
        with pytest.raises(ProtocolError):
            decode_pdu(wire(Pdu(Opcode.SCSI_COMMAND)), max_data=0, accept=TARGET_OPCODES)

    def test_ahs_past_pdu(self) -> None:
        """An AHS whose length runs past the header area is refused."""
        ahs = (200).to_bytes(2, "big") + b"\x01\x00"
        raw = wire(Pdu(Opcode.SCSI_RESPONSE, ahs=ahs))
        with pytest.raises(ProtocolError, match="AHS"):
            decode_pdu(raw, max_data=0)

    def test_bad_header_digest(self) -> None:
        """A flipped bit in the header fails the header digest."""
        raw = bytearray(wire(Pdu(Opcode.NOP_IN, itt=5), header_digest=True))
        raw[20] ^= 1
        with pytest.raises(ProtocolError, match="header digest"):
            decode_pdu(raw, max_data=0, header_digest=True)

    def test_bad_data_digest(self) -> None:
        """A flipped bit in the data fails the data digest."""
        raw = bytearray(wire(Pdu(Opcode.NOP_IN, data=b"ping"), data_digest=True))
        raw[49] ^= 1
        with pytest.raises(ProtocolError, match="data digest"):
            decode_pdu(raw, max_data=100, data_digest=True)

    @given(st.binary(max_size=400), st.booleans(), st.booleans())
    def test_arbitrary_bytes_decode(self, raw: bytes, hd: bool, dd: bool) -> None:
        """Arbitrary bytes decode to a PDU or raise ProtocolError."""
        try:
            pdu = decode_pdu(raw, max_data=256, header_digest=hd, data_digest=dd)
        except ProtocolError:
            return
        assert len(pdu.data) <= 256

    @given(st.binary(max_size=2000))
    def test_arbitrary_stream(self, raw: bytes) -> None:
        """A stream decoder fed garbage yields PDUs or ProtocolError, holding < one PDU."""
        dec = FrameDecoder(max_data=512)
        try:
            for pdu in dec.feed(raw):
                assert len(pdu.data) <= 512
        except ProtocolError:
            return
        assert dec.buffered < BHS_LEN + 1020 + 512 + 8
