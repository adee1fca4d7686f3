"""The element descriptor of READ ELEMENT STATUS data (SMC-3 6.10): one element's
address, flags, source, volume tags and device identifier.

:mod:`tapepath.scsi.element_status` holds the command and the pages that carry these
descriptors, and re-exports every name defined here.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen
from attrs.validators import instance_of, optional

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, trusted, u8, u16, uint_field

__all__ = [
    "DESCRIPTOR_FIXED_LENGTH",
    "VOLUME_TAG_LENGTH",
    "DeviceIdentifier",
    "ElementDescriptor",
    "VolumeTag",
]

#: Bytes of an element descriptor before the volume tags.
DESCRIPTOR_FIXED_LENGTH = 12
#: Bytes of a volume tag: 32-byte identifier, 2 reserved, 2-byte sequence number.
VOLUME_TAG_LENGTH = 36
#: The flags of descriptor byte 2, bit 0 first.
_FLAG_BITS = ("full", "impexp", "except_", "access", "exenab", "inenab", "cmc", "oir")


def _identifier_32(_inst: object, attr: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{attr.name} must be 32 bytes")


@frozen
class VolumeTag:
    """A primary or alternate volume tag (SMC-3): the barcode of a cartridge.

    Attributes:
        identifier: the raw 32-byte volume identifier (ASCII, space padded).
        sequence_number: the volume sequence number (16 bits).
    """

    identifier: bytes = field(validator=_identifier_32)
    sequence_number: int = field(default=0, validator=uint_field(16))

    @classmethod
    def from_text(cls, text: str, sequence_number: int = 0) -> VolumeTag:
        """Build a tag from a barcode: ASCII, at most 32 characters, space padded.

        Raises:
            ValueError: the text is not ASCII or longer than 32 characters.
        """
        raw = text.encode("ascii")
        if len(raw) > 32:
            raise ValueError(f"volume tag {text!r} is longer than 32 characters")
        return cls(raw.ljust(32, b" "), sequence_number)

    @property
    def barcode(self) -> str | None:
        """The identifier as text without trailing blanks or NULs; None when blank.

        Bytes outside ASCII are replaced, never raised on.
        """
        text = self.identifier.decode("ascii", "replace").rstrip(" \x00")
        return text or None

    def to_bytes(self) -> bytes:
        """The 36-byte volume tag field."""
        return self.identifier + b"\0\0" + self.sequence_number.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, buf: Bytes) -> VolumeTag:
        """Parse a 36-byte volume tag (DecodeError when shorter)."""
        if len(buf) < VOLUME_TAG_LENGTH:
            raise DecodeError(f"volume tag: need 36 bytes, got {len(buf)}")
        return trusted(cls)(
            identifier=bytes(buf[:32]), sequence_number=int.from_bytes(buf[34:36], "big")
        )


def _bytes_255(_inst: object, attr: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) > 255:
        raise ValueError(f"{attr.name} must be bytes of at most 255")


@frozen
class DeviceIdentifier:
    """The device identifier of an element descriptor (reported when DVCID is set).

    It has the layout of an SPC designation descriptor: 4 header bytes, then a
    variable-length identifier (vendor+product+serial on some libraries, the serial
    number alone on others).

    Attributes:
        code_set: 1 binary, 2 ASCII, 3 UTF-8 (4 bits).
        designator_type: the identifier type (4 bits).
        identifier: the identifier bytes (at most 255).
        association: the association field (2 bits).
        protocol_identifier: the protocol identifier (4 bits).
        piv: the protocol identifier valid bit.
    """

    code_set: int = field(validator=uint_field(4))
    designator_type: int = field(validator=uint_field(4))
    identifier: bytes = field(validator=_bytes_255)
    association: int = field(default=0, validator=uint_field(2))
    protocol_identifier: int = field(default=0, validator=uint_field(4))
    piv: bool = field(default=False, validator=flag_field)

    @property
    def text(self) -> str:
        """The identifier decoded as ASCII (replacement characters where not), stripped."""
        return self.identifier.decode("ascii", "replace").rstrip(" \x00")

    def to_bytes(self) -> bytes:
        """The 4-byte header and the identifier."""
        return (
            bytes(
                (
                    self.protocol_identifier << 4 | self.code_set,
                    int(self.piv) << 7 | self.association << 4 | self.designator_type,
                    0,
                    len(self.identifier),
                )
            )
            + self.identifier
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> DeviceIdentifier:
        """Parse a device identifier; DecodeError when its length runs past ``buf``."""
        length = u8(buf, 3, "device identifier length")
        if 4 + length > len(buf):
            raise DecodeError(
                f"device identifier: {length} bytes announced, {len(buf) - 4} present"
            )
        return trusted(cls)(
            code_set=buf[0] & 0x0F,
            designator_type=buf[1] & 0x0F,
            identifier=bytes(buf[4 : 4 + length]),
            association=(buf[1] >> 4) & 3,
            protocol_identifier=buf[0] >> 4,
            piv=bool(buf[1] & 0x80),
        )


_opt_tag = optional(instance_of(VolumeTag))


@frozen
class ElementDescriptor:
    """One element descriptor of an element status page.

    Which flags mean something depends on the element type (ImpExp, ExEnab, InEnab
    only for import/export elements; the bus fields only for data transfer
    elements); all are kept so the descriptor re-encodes exactly.

    Attributes:
        address: the element address.
        full: the element holds a volume.
        impexp: the volume was put in by an operator (import/export).
        except_: the element is in an abnormal state (see ``asc``/``ascq``).
        access: the transport can reach the element.
        exenab: the element can export media.
        inenab: the element can import media.
        cmc: the import/export element is controlled by the changer (SMC-3 CMC).
        oir: operator intervention required (SMC-3 OIR).
        asc: additional sense code of the abnormal state.
        ascq: additional sense code qualifier.
        not_bus: the drive is not on the same bus as the changer.
        id_valid: ``scsi_bus_address`` is valid.
        lu_valid: ``lun`` is valid.
        lun: the drive's logical unit number (3 bits).
        scsi_bus_address: the drive's SCSI bus address.
        source_valid: SVALID, ``source_address`` and ``invert`` are valid.
        invert: the volume was inverted on its way here.
        ed: element disabled.
        medium_type: 0 unspecified, 1 data, 2 cleaning, 3 diagnostic, 4 WORM (3 bits).
        source_address: the element the volume came from.
        primary_tag: the primary volume tag when the page has PVolTag.
        alternate_tag: the alternate volume tag when the page has AVolTag.
        device_id: the device identifier (DVCID), if the device sent a non-empty one.
        extra: bytes after the parsed fields, up to the end of the descriptor, with
            trailing zero bytes dropped (vendor-specific data).
        partial: the descriptor was cut short in transit; fields not received hold
            their defaults.
    """

    address: int = field(validator=uint_field(16))
    full: bool = field(default=False, validator=flag_field)
    impexp: bool = field(default=False, validator=flag_field)
    except_: bool = field(default=False, validator=flag_field)
    access: bool = field(default=False, validator=flag_field)
    exenab: bool = field(default=False, validator=flag_field)
    inenab: bool = field(default=False, validator=flag_field)
    cmc: bool = field(default=False, validator=flag_field)
    oir: bool = field(default=False, validator=flag_field)
    asc: int = field(default=0, validator=uint_field(8))
    ascq: int = field(default=0, validator=uint_field(8))
    not_bus: bool = field(default=False, validator=flag_field)
    id_valid: bool = field(default=False, validator=flag_field)
    lu_valid: bool = field(default=False, validator=flag_field)
    lun: int = field(default=0, validator=uint_field(3))
    scsi_bus_address: int = field(default=0, validator=uint_field(8))
    source_valid: bool = field(default=False, validator=flag_field)
    invert: bool = field(default=False, validator=flag_field)
    ed: bool = field(default=False, validator=flag_field)
    medium_type: int = field(default=0, validator=uint_field(3))
    source_address: int = field(default=0, validator=uint_field(16))
    primary_tag: VolumeTag | None = field(default=None, validator=_opt_tag)
    alternate_tag: VolumeTag | None = field(default=None, validator=_opt_tag)
    device_id: DeviceIdentifier | None = field(
        default=None, validator=optional(instance_of(DeviceIdentifier))
    )
    extra: bytes = field(default=b"")
    partial: bool = field(default=False, validator=flag_field, eq=False)

    @extra.validator
    def _check_extra(self, _attr: attrs.Attribute[bytes], value: bytes) -> None:
        if not isinstance(value, bytes):
            raise ValueError("extra must be bytes")
        if value.endswith(b"\0"):
            raise ValueError("extra must not end in zero bytes (they are padding)")

    @property
    def barcode(self) -> str | None:
        """The primary volume tag's text, stripped; None when blank or absent."""
        return None if self.primary_tag is None else self.primary_tag.barcode

    @property
    def encoded_length(self) -> int:
        """The length of :meth:`to_bytes` (before the page pads it)."""
        tags = VOLUME_TAG_LENGTH * (
            (self.primary_tag is not None) + (self.alternate_tag is not None)
        )
        dev = 0 if self.device_id is None else 4 + len(self.device_id.identifier)
        return DESCRIPTOR_FIXED_LENGTH + tags + dev + len(self.extra)

    @property
    def source(self) -> int | None:
        """The source element address when SVALID is set, else None."""
        return self.source_address if self.source_valid else None

    def to_bytes(self) -> bytes:
        """The descriptor without padding (the page pads it to its descriptor length)."""
        flags = sum(int(getattr(self, name)) << bit for bit, name in enumerate(_FLAG_BITS))
        bus = int(self.not_bus) << 7 | int(self.id_valid) << 5 | int(self.lu_valid) << 4 | self.lun
        medium = (
            int(self.source_valid) << 7 | int(self.invert) << 6 | int(self.ed) << 3
        ) | self.medium_type
        out = bytearray(self.address.to_bytes(2, "big"))
        out += bytes((flags, 0, self.asc, self.ascq, bus, self.scsi_bus_address, 0, medium))
        out += self.source_address.to_bytes(2, "big")
        if self.primary_tag is not None:
            out += self.primary_tag.to_bytes()
        if self.alternate_tag is not None:
            out += self.alternate_tag.to_bytes()
        if self.device_id is not None:
            out += self.device_id.to_bytes()
        out += self.extra
        return bytes(out)

    @classmethod
    def from_bytes(
        cls, buf: Bytes, *, pvoltag: bool = False, avoltag: bool = False
    ) -> ElementDescriptor:
        """Parse one descriptor (``buf`` is exactly the descriptor's bytes).

        A buffer shorter than the layout needs gives a ``partial`` descriptor holding
        what arrived, as long as the 12 fixed bytes are there.

        Args:
            buf: the descriptor bytes.
            pvoltag: the page announces primary volume tags.
            avoltag: the page announces alternate volume tags.

        Raises:
            DecodeError: fewer than 12 bytes.
        """
        if len(buf) < DESCRIPTOR_FIXED_LENGTH:
            raise DecodeError(f"element descriptor: need 12 bytes, got {len(buf)}")
        partial = False
        pos = DESCRIPTOR_FIXED_LENGTH
        tags: list[VolumeTag | None] = []
        for wanted in (pvoltag, avoltag):
            tag: VolumeTag | None = None
            if wanted:
                chunk = buf[pos : pos + VOLUME_TAG_LENGTH]
                if len(chunk) == VOLUME_TAG_LENGTH:
                    tag = VolumeTag.from_bytes(chunk)
                else:
                    partial = True
                    if len(chunk) >= 32:
                        tag = trusted(VolumeTag)(identifier=bytes(chunk[:32]))
                pos += VOLUME_TAG_LENGTH
            tags.append(tag)
        rest = bytes(buf[pos:])
        device_id: DeviceIdentifier | None = None
        if len(rest) >= 4 and any(rest[:4]) and 4 + rest[3] <= len(rest):
            device_id = DeviceIdentifier.from_bytes(rest)
            rest = rest[4 + rest[3] :]
        b6, b9 = buf[6], buf[9]
        flags: dict[str, Any] = {n: bool(buf[2] >> i & 1) for i, n in enumerate(_FLAG_BITS)}
        return trusted(cls)(
            address=u16(buf, 0),
            **flags,
            asc=buf[4],
            ascq=buf[5],
            not_bus=bool(b6 & 0x80),
            id_valid=bool(b6 & 0x20),
            lu_valid=bool(b6 & 0x10),
            lun=b6 & 7,
            scsi_bus_address=buf[7],
            source_valid=bool(b9 & 0x80),
            invert=bool(b9 & 0x40),
            ed=bool(b9 & 8),
            medium_type=b9 & 7,
            source_address=u16(buf, 10),
            primary_tag=tags[0],
            alternate_tag=tags[1],
            device_id=device_id,
            extra=rest.rstrip(b"\0"),
            partial=partial,
        )
