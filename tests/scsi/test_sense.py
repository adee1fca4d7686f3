"""Sense data: decoding of hand-built buffers, encoders, round trips and arbitrary bytes."""

from __future__ import annotations

import pytest

from tapepath.errors import DecodeError
from tapepath.scsi.sense import (
    ActualRetryCount,
    AtaStatusReturn,
    BlockCommandsDescriptor,
    CommandSpecificDescriptor,
    Descriptor,
    DeviceDesignationDescriptor,
    DirectAccessBlockDescriptor,
    FieldPointer,
    ForwardedSenseDescriptor,
    FruDescriptor,
    InformationDescriptor,
    MicrocodeActivationDescriptor,
    ProgressIndication,
    ProgressIndicationDescriptor,
    RawSenseKeySpecific,
    SegmentPointer,
    SenseKey,
    SenseKeySpecific,
    SenseKeySpecificDescriptor,
    StreamCommandsDescriptor,
    UnitAttentionQueueOverflow,
    UnknownDescriptor,
    UserDataSegmentReferral,
    decode_sense,
    decode_sks,
    fixed_sense,
)


def fixed(
    key: int, asc: int, ascq: int, *, b0: int = 0x70, b2: int = 0, info: bytes = b"\0" * 4
) -> bytearray:
    """18 bytes of fixed sense built by hand from the SPC-5 layout."""
    buf = bytearray(18)
    buf[0] = b0
    buf[2] = b2 | key
    buf[3:7] = info
    buf[7] = 10
    buf[12] = asc
    buf[13] = ascq
    return buf


class TestFixedFormat:
    """Fixed format (70h/71h) fields, read from hand-built buffers."""

    def test_not_ready_becoming_ready(self) -> None:
        """Sense key, ASC/ASCQ, text and the one-liner."""
        s = decode_sense(bytes(fixed(0x02, 0x04, 0x01)))
        assert s.sense_key is SenseKey.NOT_READY
        assert (s.asc, s.ascq) == (0x04, 0x01)
        assert s.description == "Logical unit is in process of becoming ready"
        assert str(s) == "NOT READY: Logical unit is in process of becoming ready (04/01)"
        assert not s.deferred
        assert not s.descriptor_format
        assert not s.short
        assert s.information is None
        assert s.sks is None

    def test_tape_flags_and_valid_information(self) -> None:
        """FILEMARK/EOM/ILI bits and the INFORMATION field with VALID set."""
        buf = fixed(0x00, 0x00, 0x01, b0=0xF0, b2=0xE0, info=b"\x00\x00\x01\x00")
        s = decode_sense(bytes(buf))
        assert s.filemark
        assert s.eom
        assert s.ili
        assert s.information == 256
        assert s.residual == 256
        assert "FILEMARK EOM ILI" in str(s)

    def test_information_without_valid_is_none(self) -> None:
        """Without the VALID bit the INFORMATION bytes are not reported."""
        s = decode_sense(bytes(fixed(0x03, 0x11, 0x00, info=b"\x00\x00\x00\x09")))
        assert s.information is None

    def test_negative_residual(self) -> None:
        """A block longer than requested gives a negative residual (two's complement)."""
        s = decode_sense(bytes(fixed(0, 0, 0, b0=0xF0, b2=0x20, info=b"\xff\xff\xff\xf0")))
        assert s.information == 0xFFFFFFF0
        assert s.residual == -16

    def test_deferred(self) -> None:
        """Response code 71h marks a deferred error."""
        s = decode_sense(bytes(fixed(0x03, 0x0C, 0x00, b0=0x71)))
        assert s.deferred
        assert s.response_code == 0x71
        assert str(s).endswith("[deferred]")

    def test_command_specific_fru_and_additional(self) -> None:
        """Bytes 8-11, 14 and 18 onwards."""
        buf = fixed(0x04, 0x44, 0x00)
        buf[7] = 14
        buf[8:12] = b"\x12\x34\x56\x78"
        buf[14] = 0x33
        buf += b"\xaa\xbb\xcc\xdd"
        s = decode_sense(bytes(buf))
        assert s.command_specific == 0x12345678
        assert s.fru == 0x33
        assert s.additional == b"\xaa\xbb\xcc\xdd"

    def test_additional_length_shorter_than_buffer_is_trusted(self) -> None:
        """Bytes past 8 + additional length are not sense data."""
        buf = fixed(0x02, 0x04, 0x01)
        buf[7] = 0
        s = decode_sense(bytes(buf))
        assert (s.asc, s.ascq) == (0, 0)
        assert s.short

    def test_additional_length_longer_than_buffer(self) -> None:
        """A lying additional length is bounded by the buffer and flagged short."""
        buf = fixed(0x02, 0x04, 0x01)
        buf[7] = 0xFF
        s = decode_sense(bytes(buf))
        assert (s.asc, s.ascq) == (0x04, 0x01)
        assert s.short
        assert s.additional == b""

    def test_truncated_before_asc(self) -> None:
        """Eight bytes: the sense key is there, ASC/ASCQ are not."""
        s = decode_sense(bytes(fixed(0x06, 0x29, 0x00)[:8]))
        assert s.sense_key == SenseKey.UNIT_ATTENTION
        assert (s.asc, s.ascq) == (0, 0)
        assert s.short

    def test_three_bytes_is_enough_for_the_key(self) -> None:
        """The minimum usable fixed sense is three bytes."""
        s = decode_sense(b"\x70\x00\x05")
        assert s.sense_key == SenseKey.ILLEGAL_REQUEST
        assert s.short

    @pytest.mark.parametrize(
        "buf",
        [b"", b"\x70", b"\x70\x00", b"\x72", b"\x00" * 18, b"\x7f" + b"\0" * 17, b"\x74\0\0"],
    )
    def test_unusable_bytes_raise(self, buf: bytes) -> None:
        """Empty, too short for the key, or not a sense response code."""
        with pytest.raises(DecodeError):
            decode_sense(buf)

    def test_memoryview_and_bytearray_accepted(self) -> None:
        """Any bytes-like buffer decodes the same."""
        buf = fixed(0x05, 0x24, 0x00)
        assert decode_sense(memoryview(buf)) == decode_sense(bytes(buf))
        assert decode_sense(buf) == decode_sense(bytes(buf))


class TestSenseKeySpecific:
    """The SKS variants, selected by sense key (SPC-5 4.4.2.4)."""

    def test_field_pointer_in_cdb_with_bit(self) -> None:
        """ILLEGAL REQUEST: C/D, BPV, bit pointer, field pointer."""
        sks = decode_sks(SenseKey.ILLEGAL_REQUEST, b"\xcb\x00\x11")
        assert sks == FieldPointer(cdb=True, bpv=True, bit_pointer=3, field_pointer=17)

    def test_field_pointer_in_parameter_data(self) -> None:
        """C/D clear: the error is in the parameter list."""
        sks = decode_sks(SenseKey.ILLEGAL_REQUEST, b"\x80\x01\x02")
        assert sks == FieldPointer(cdb=False, bpv=False, bit_pointer=0, field_pointer=0x102)

    @pytest.mark.parametrize(
        "key", [SenseKey.RECOVERED_ERROR, SenseKey.MEDIUM_ERROR, SenseKey.HARDWARE_ERROR]
    )
    def test_actual_retry_count(self, key: SenseKey) -> None:
        """Error sense keys carry the retry count."""
        assert decode_sks(key, b"\x80\x00\x07") == ActualRetryCount(7)

    @pytest.mark.parametrize("key", [SenseKey.NO_SENSE, SenseKey.NOT_READY])
    def test_progress(self, key: SenseKey) -> None:
        """NO SENSE and NOT READY carry progress in 65536ths."""
        sks = decode_sks(key, b"\x80\x40\x00")
        assert isinstance(sks, ProgressIndication)
        assert sks.fraction == 0.25

    def test_segment_pointer(self) -> None:
        """COPY ABORTED: SD, BPV, bit and byte."""
        sks = decode_sks(SenseKey.COPY_ABORTED, b"\xa9\x00\x10")
        assert sks == SegmentPointer(sd=True, bpv=True, bit_pointer=1, field_pointer=16)

    def test_unit_attention_overflow(self) -> None:
        """UNIT ATTENTION: the queue overflow bit."""
        assert decode_sks(SenseKey.UNIT_ATTENTION, b"\x81\x00\x00") == (
            UnitAttentionQueueOverflow(True)
        )

    def test_reserved_format_kept_raw(self) -> None:
        """Sense keys without a defined SKS format keep the 23 bits."""
        assert decode_sks(SenseKey.DATA_PROTECT, b"\x81\x23\x45") == RawSenseKeySpecific(0x012345)

    def test_sksv_clear_is_none(self) -> None:
        """Without SKSV the bytes mean nothing."""
        assert decode_sks(SenseKey.ILLEGAL_REQUEST, b"\x4b\x00\x11") is None

    def test_too_short(self) -> None:
        """Fewer than three bytes is a DecodeError."""
        with pytest.raises(DecodeError):
            decode_sks(0, b"\x80\x00")

    def test_fixed_sense_carries_sks(self) -> None:
        """Bytes 15-17 of fixed sense."""
        buf = fixed(0x05, 0x24, 0x00)
        buf[15:18] = b"\xc0\x00\x02"
        s = decode_sense(bytes(buf))
        assert s.sks == FieldPointer(cdb=True, field_pointer=2)

    @pytest.mark.parametrize(
        "value",
        [
            FieldPointer(cdb=True, bpv=True, bit_pointer=7, field_pointer=0xFFFF),
            ActualRetryCount(0x1234),
            ProgressIndication(0x8000),
            SegmentPointer(sd=False, bpv=True, bit_pointer=2, field_pointer=9),
            UnitAttentionQueueOverflow(True),
        ],
    )
    def test_variants_encode_their_bits(self, value: object) -> None:
        """to_bytes sets SKSV and the fields decode back."""
        raw = value.to_bytes()  # type: ignore[attr-defined]
        assert raw[0] & 0x80
        key = {
            FieldPointer: SenseKey.ILLEGAL_REQUEST,
            ActualRetryCount: SenseKey.MEDIUM_ERROR,
            ProgressIndication: SenseKey.NOT_READY,
            SegmentPointer: SenseKey.COPY_ABORTED,
            UnitAttentionQueueOverflow: SenseKey.UNIT_ATTENTION,
        }[type(value)]
        assert decode_sks(key, raw) == value

    def test_union_alias_works_with_isinstance(self) -> None:
        """SenseKeySpecific and Descriptor are real unions, not strings."""
        assert isinstance(ActualRetryCount(1), SenseKeySpecific)
        assert not isinstance(FruDescriptor(1), SenseKeySpecific)
        assert isinstance(FruDescriptor(1), Descriptor)

    def test_field_ranges_checked(self) -> None:
        """A value that does not fit raises ValueError naming the field."""
        with pytest.raises(ValueError, match="bit_pointer"):
            FieldPointer(cdb=True, bit_pointer=8)
        with pytest.raises(ValueError, match="count"):
            ActualRetryCount(0x10000)


def desc(dtype: int, body: bytes) -> bytes:
    """One descriptor: type, additional length, body."""
    return bytes((dtype, len(body))) + body


def descriptor_buf(key: int, asc: int, ascq: int, *descs: bytes, code: int = 0x72) -> bytes:
    """Descriptor format sense built by hand."""
    body = b"".join(descs)
    return bytes((code, key, asc, ascq, 0, 0, 0, len(body))) + body


class TestDescriptorFormat:
    """Descriptor format (72h/73h) and every SPC-5 descriptor type."""

    def test_header(self) -> None:
        """Key, ASC/ASCQ in bytes 1-3; 73h is deferred."""
        s = decode_sense(descriptor_buf(0x06, 0x2A, 0x06, code=0x73))
        assert s.descriptor_format
        assert s.deferred
        assert s.sense_key == SenseKey.UNIT_ATTENTION
        assert s.description == "Asymmetric access state changed"
        assert s.descriptors == ()
        assert not s.short

    def test_information(self) -> None:
        """00h: 64-bit INFORMATION with VALID."""
        info = desc(0x00, b"\x80\x00" + (0x123456789A).to_bytes(8, "big"))
        s = decode_sense(descriptor_buf(0x03, 0x11, 0x00, info))
        assert s.descriptors == (InformationDescriptor(0x123456789A, True),)
        assert s.information == 0x123456789A

    def test_information_not_valid(self) -> None:
        """00h with VALID clear is kept but not lifted to Sense.information."""
        info = desc(0x00, b"\x00\x00" + (5).to_bytes(8, "big"))
        s = decode_sense(descriptor_buf(0x03, 0x11, 0x00, info))
        assert s.descriptors == (InformationDescriptor(5, False),)
        assert s.information is None

    def test_negative_64_bit_residual(self) -> None:
        """Descriptor INFORMATION is a 64-bit two's complement residual."""
        info = desc(0x00, b"\x80\x00" + b"\xff" * 8)
        s = decode_sense(descriptor_buf(0x00, 0, 0, info, desc(0x04, b"\x00\x20")))
        assert s.residual == -1
        assert s.ili

    def test_command_specific_sks_fru_stream(self) -> None:
        """01h, 02h, 03h, 04h lifted to the Sense attributes."""
        s = decode_sense(
            descriptor_buf(
                0x05,
                0x24,
                0x00,
                desc(0x01, b"\x00\x00" + (7).to_bytes(8, "big")),
                desc(0x02, b"\x00\x00\xcb\x00\x11\x00"),
                desc(0x03, b"\x00\x42"),
                desc(0x04, b"\x00\xc0"),
            )
        )
        assert s.command_specific == 7
        assert s.sks == FieldPointer(cdb=True, bpv=True, bit_pointer=3, field_pointer=17)
        assert s.fru == 0x42
        assert s.filemark
        assert s.eom
        assert not s.ili
        assert [type(d) for d in s.descriptors] == [
            CommandSpecificDescriptor,
            SenseKeySpecificDescriptor,
            FruDescriptor,
            StreamCommandsDescriptor,
        ]
        assert s.descriptor(0x03) == FruDescriptor(0x42)
        assert s.descriptor(0x0F) is None

    def test_block_commands(self) -> None:
        """05h: ILI."""
        s = decode_sense(descriptor_buf(0x00, 0, 0, desc(0x05, b"\x00\x20")))
        assert s.descriptors == (BlockCommandsDescriptor(True),)
        assert s.ili

    def test_ata_status_return(self) -> None:
        """09h: ATA registers with the interleaved LBA bytes."""
        body = bytes((0x01, 0x04, 0x00, 0x10, 0x44, 0x11, 0x55, 0x22, 0x66, 0x33, 0x40, 0x51))
        s = decode_sense(descriptor_buf(0x01, 0x00, 0x1D, desc(0x09, body)))
        ata = s.descriptors[0]
        assert isinstance(ata, AtaStatusReturn)
        assert ata.extend
        assert ata.error == 0x04
        assert ata.count == 0x10
        assert ata.lba == 0x665544332211
        assert (ata.device, ata.status) == (0x40, 0x51)

    def test_progress_indication(self) -> None:
        """0Ah: another operation's key, code and progress."""
        body = bytes((0x02, 0x04, 0x07, 0x00, 0x80, 0x00))
        s = decode_sense(descriptor_buf(0x00, 0, 0x16, desc(0x0A, body)))
        assert s.descriptors == (ProgressIndicationDescriptor(0x02, 0x04, 0x07, 0x8000),)
        d = s.descriptors[0]
        assert isinstance(d, ProgressIndicationDescriptor)
        assert d.fraction == 0.5

    def test_user_data_segment_referral(self) -> None:
        """0Bh: NOT_ALL_R and the raw segments."""
        body = b"\x01\x00" + b"\x11" * 20
        s = decode_sense(descriptor_buf(0x05, 0, 0, desc(0x0B, body)))
        assert s.descriptors == (UserDataSegmentReferral(True, b"\x11" * 20),)

    def test_forwarded_sense(self) -> None:
        """0Ch: FSDT, source, status and the forwarded sense bytes."""
        inner = fixed_sense(SenseKey.MEDIUM_ERROR, 0x11, 0x00)
        body = bytes((0x82, 0x02)) + inner
        s = decode_sense(descriptor_buf(0x0A, 0x0D, 0x00, desc(0x0C, body)))
        d = s.descriptors[0]
        assert d == ForwardedSenseDescriptor(True, 2, 2, inner)
        assert decode_sense(d.sense).asc == 0x11  # type: ignore[union-attr]

    def test_direct_access_block_device(self) -> None:
        """0Dh: VALID, ILI, SKS, FRU, INFORMATION, command specific, all lifted."""
        body = (
            b"\xa0\x00"
            + b"\x80\x00\x03"
            + b"\x09"
            + (0x1000).to_bytes(8, "big")
            + (0x2000).to_bytes(8, "big")
        )
        s = decode_sense(descriptor_buf(0x03, 0x11, 0x00, desc(0x0D, body)))
        d = s.descriptors[0]
        assert isinstance(d, DirectAccessBlockDescriptor)
        assert s.information == 0x1000
        assert s.command_specific == 0x2000
        assert s.ili
        assert s.fru == 9
        assert s.sks == ActualRetryCount(3)

    def test_device_designation_and_microcode(self) -> None:
        """0Eh raw designator, 0Fh activation time."""
        s = decode_sense(
            descriptor_buf(
                0x06,
                0x3F,
                0x01,
                desc(0x0E, b"\x00\x00\x01\x03\x00\x08" + b"\x50" * 8),
                desc(0x0F, b"\x00\x00\x00\x00\x00\x3c"),
            )
        )
        assert s.descriptors == (
            DeviceDesignationDescriptor(b"\x01\x03\x00\x08" + b"\x50" * 8),
            MicrocodeActivationDescriptor(60),
        )

    def test_unknown_and_short_descriptors_kept_raw(self) -> None:
        """Vendor types, OSD types and too-short known types stay raw."""
        s = decode_sense(
            descriptor_buf(
                0x02,
                0x04,
                0x01,
                desc(0x80, b"\x01\x02\x03\x04"),
                desc(0x06, b"\x00" * 6),
                desc(0x0F, b"\x00\x00"),
            )
        )
        assert s.descriptors == (
            UnknownDescriptor(0x80, b"\x01\x02\x03\x04"),
            UnknownDescriptor(0x06, b"\x00" * 6),
            UnknownDescriptor(0x0F, b"\x00\x00"),
        )
        assert not s.short

    def test_descriptor_past_the_end_is_short(self) -> None:
        """A descriptor whose length runs past the data is cut and flagged."""
        buf = descriptor_buf(0x00, 0, 0, desc(0x00, b"\x80\x00" + b"\x00" * 8))[:-3]
        s = decode_sense(bytes(buf[:7]) + bytes((len(buf) - 8,)) + buf[8:])
        assert s.short
        assert isinstance(s.descriptors[0], UnknownDescriptor)

    def test_lying_additional_length(self) -> None:
        """An additional length beyond the buffer is bounded and flagged."""
        buf = bytearray(descriptor_buf(0x02, 0x3A, 0x00, desc(0x03, b"\x00\x05")))
        buf[7] = 200
        s = decode_sense(bytes(buf))
        assert s.short
        assert s.fru == 5

    def test_two_bytes_is_enough(self) -> None:
        """Descriptor sense of two bytes still has its key."""
        s = decode_sense(b"\x72\x06")
        assert s.sense_key == SenseKey.UNIT_ATTENTION
        assert (s.asc, s.ascq) == (0, 0)
