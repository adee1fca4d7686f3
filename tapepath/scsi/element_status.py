"""READ ELEMENT STATUS (B8h, SMC-3): the command and the element status data.

The data is an 8-byte header followed by element status pages, one per element type;
each page holds fixed-length element descriptors. :meth:`ElementStatus.from_bytes`
copes with answers cut short by the allocation length (complete descriptors are kept,
``truncated`` is set) and with tgtd's answer, whose byte counts announce 8 bytes more
than it sends: the last descriptor arrives cut, and is still returned with what it
holds (address, flags, source, volume tag identifier) and ``partial=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import Any, ClassVar

import attrs
from attrs import field, frozen
from attrs.validators import instance_of, optional

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, u8, u16, u24, uint_field
from tapepath.scsi.cdb import check_opcode

__all__ = [
    "DESCRIPTOR_FIXED_LENGTH",
    "VOLUME_TAG_LENGTH",
    "DeviceIdentifier",
    "ElementDescriptor",
    "ElementStatus",
    "ElementStatusPage",
    "ElementType",
    "ReadElementStatus",
    "VolumeTag",
]

#: Bytes of an element descriptor before the volume tags.
DESCRIPTOR_FIXED_LENGTH = 12
#: Bytes of a volume tag: 32-byte identifier, 2 reserved, 2-byte sequence number.
VOLUME_TAG_LENGTH = 36
_HEADER = 8
#: The flags of descriptor byte 2, bit 0 first.
_FLAG_BITS = ("full", "impexp", "except_", "access", "exenab", "inenab", "cmc", "oir")


class ElementType(IntEnum):
    """Element type codes (SMC-3)."""

    ALL = 0
    MEDIUM_TRANSPORT = 1
    STORAGE = 2
    IMPORT_EXPORT = 3
    DATA_TRANSFER = 4


def _element_type(value: int) -> ElementType | int:
    try:
        return ElementType(value)
    except ValueError:
        return value


@frozen
class ReadElementStatus:
    """READ ELEMENT STATUS (B8h, SMC-3).

    Attributes:
        element_type: 0 all types, 1 transport, 2 storage, 3 import/export, 4 data
            transfer (4 bits; 5-15 are reserved but representable).
        voltag: report volume tags.
        starting_address: the lowest element address to report.
        number_of_elements: the most descriptors to report.
        curdata: report current data without moving the robot.
        dvcid: report the device identifier of data transfer elements.
        allocation_length: bytes the initiator accepts (24 bits).
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0xB8
    element_type: int = field(default=0, validator=uint_field(4))
    voltag: bool = field(default=False, validator=flag_field)
    starting_address: int = field(default=0, validator=uint_field(16))
    number_of_elements: int = field(default=0xFFFF, validator=uint_field(16))
    curdata: bool = field(default=False, validator=flag_field)
    dvcid: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=0xFFFF, validator=uint_field(24))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 12-byte CDB."""
        return (
            bytes((self.OPCODE, int(self.voltag) << 4 | int(self.element_type)))
            + self.starting_address.to_bytes(2, "big")
            + self.number_of_elements.to_bytes(2, "big")
            + bytes((int(self.curdata) << 1 | int(self.dvcid),))
            + self.allocation_length.to_bytes(3, "big")
            + bytes((0, self.control))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReadElementStatus:
        """Parse a READ ELEMENT STATUS CDB.

        Raises:
            DecodeError: wrong opcode or length, or reserved bits set.
        """
        check_opcode(cdb, cls.OPCODE, 12, "READ ELEMENT STATUS")
        if cdb[1] & 0xE0 or cdb[6] & 0xFC or cdb[10]:
            raise DecodeError("READ ELEMENT STATUS: reserved bits set in byte 1, 6 or 10")
        return cls(
            element_type=_element_type(cdb[1] & 0x0F),
            voltag=bool(cdb[1] & 0x10),
            starting_address=int.from_bytes(cdb[2:4], "big"),
            number_of_elements=int.from_bytes(cdb[4:6], "big"),
            curdata=bool(cdb[6] & 2),
            dvcid=bool(cdb[6] & 1),
            allocation_length=int.from_bytes(cdb[7:10], "big"),
            control=cdb[11],
        )

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


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
        return cls(bytes(buf[:32]), int.from_bytes(buf[34:36], "big"))


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
        return cls(
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
                        tag = VolumeTag(bytes(chunk[:32]))
                pos += VOLUME_TAG_LENGTH
            tags.append(tag)
        rest = bytes(buf[pos:])
        device_id: DeviceIdentifier | None = None
        if len(rest) >= 4 and any(rest[:4]) and 4 + rest[3] <= len(rest):
            device_id = DeviceIdentifier.from_bytes(rest)
            rest = rest[4 + rest[3] :]
        b6, b9 = buf[6], buf[9]
        flags: dict[str, Any] = {n: bool(buf[2] >> i & 1) for i, n in enumerate(_FLAG_BITS)}
        return cls(
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


def _descriptor_tuple(items: Iterable[ElementDescriptor]) -> tuple[ElementDescriptor, ...]:
    return tuple(items)


@frozen
class ElementStatusPage:
    """One element status page: the descriptors of one element type.

    Attributes:
        element_type: the element type code of every descriptor in the page.
        descriptors: the element descriptors.
        pvoltag: descriptors carry a primary volume tag.
        avoltag: descriptors carry an alternate volume tag.
        descriptor_length: the length of each descriptor; None: the longest
            descriptor's natural length (shorter ones are zero padded).
        byte_count: the page's "byte count of descriptor data available"; None: the
            descriptors' total. A parsed page keeps the value the device reported,
            which exceeds what arrived when the answer was cut short.
    """

    element_type: int = field(validator=uint_field(8))
    descriptors: tuple[ElementDescriptor, ...] = field(default=(), converter=_descriptor_tuple)
    pvoltag: bool = field(default=False, validator=flag_field)
    avoltag: bool = field(default=False, validator=flag_field)
    descriptor_length: int | None = field(default=None)
    byte_count: int | None = field(default=None)

    def __attrs_post_init__(self) -> None:
        for d in self.descriptors:
            if not isinstance(d, ElementDescriptor):
                raise ValueError("descriptors must be ElementDescriptor values")
            if (d.primary_tag is not None) != self.pvoltag and not d.partial:
                raise ValueError(f"element {d.address}: primary_tag does not match pvoltag")
            if (d.alternate_tag is not None) != self.avoltag and not d.partial:
                raise ValueError(f"element {d.address}: alternate_tag does not match avoltag")
        if self.descriptor_length is not None:
            check_uint("descriptor_length", self.descriptor_length, 16)
            longest = max((d.encoded_length for d in self.descriptors), default=0)
            if longest > self.descriptor_length:
                raise ValueError(
                    f"descriptor_length={self.descriptor_length} is shorter than a "
                    f"descriptor ({longest} bytes)"
                )
        if self.byte_count is not None:
            check_uint("byte_count", self.byte_count, 24)

    @property
    def type(self) -> ElementType | int:
        """The element type as an :class:`ElementType` when known."""
        return _element_type(self.element_type)

    @property
    def effective_descriptor_length(self) -> int:
        """The descriptor length written in the page header."""
        if self.descriptor_length is not None:
            return self.descriptor_length
        natural = DESCRIPTOR_FIXED_LENGTH + VOLUME_TAG_LENGTH * (
            int(self.pvoltag) + int(self.avoltag)
        )
        return max([natural, *(d.encoded_length for d in self.descriptors)])

    def to_bytes(self) -> bytes:
        """The page header and every descriptor, each padded to the descriptor length."""
        length = self.effective_descriptor_length
        body = b"".join(d.to_bytes().ljust(length, b"\0") for d in self.descriptors)
        count = len(body) if self.byte_count is None else self.byte_count
        header = bytes((self.element_type, int(self.pvoltag) << 7 | int(self.avoltag) << 6))
        return header + length.to_bytes(2, "big") + b"\0" + count.to_bytes(3, "big") + body


def _page_tuple(items: Iterable[ElementStatusPage]) -> tuple[ElementStatusPage, ...]:
    return tuple(items)


@frozen
class ElementStatus:
    """The data of READ ELEMENT STATUS: header and element status pages.

    Attributes:
        first_element_address: the lowest address reported (tgtd gets it wrong:
            use the descriptors' addresses).
        number_of_elements: the number of elements the device has available to
            report (may exceed the descriptors present when the answer was cut).
        pages: the element status pages.
        byte_count: "byte count of report available" from the header; None: computed.
        truncated: the answer ended before the data the headers announced (short
            allocation length, or tgtd's short transfer). Only complete descriptors
            and the ``partial`` last one are present.
    """

    first_element_address: int = field(default=0, validator=uint_field(16))
    number_of_elements: int | None = field(default=None)
    pages: tuple[ElementStatusPage, ...] = field(default=(), converter=_page_tuple)
    byte_count: int | None = field(default=None)
    truncated: bool = field(default=False, validator=flag_field, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.number_of_elements is not None:
            check_uint("number_of_elements", self.number_of_elements, 16)
        if self.byte_count is not None:
            check_uint("byte_count", self.byte_count, 24)

    def descriptors(self, element_type: int | None = None) -> Iterator[ElementDescriptor]:
        """Every descriptor of every page, or of the pages of one element type."""
        for page in self.pages:
            if element_type is None or page.element_type == element_type:
                yield from page.descriptors

    def get(self, address: int) -> ElementDescriptor | None:
        """The descriptor of the element at ``address``, or None when not reported."""
        return next((d for d in self.descriptors() if d.address == address), None)

    @property
    def partial(self) -> bool:
        """A descriptor arrived cut (see :attr:`ElementDescriptor.partial`)."""
        return any(d.partial for d in self.descriptors())

    def to_bytes(self) -> bytes:
        """The complete data: header then pages (the virtual library's answer)."""
        body = b"".join(p.to_bytes() for p in self.pages)
        count = len(body) if self.byte_count is None else self.byte_count
        number = (
            sum(len(p.descriptors) for p in self.pages)
            if self.number_of_elements is None
            else self.number_of_elements
        )
        return (
            self.first_element_address.to_bytes(2, "big")
            + number.to_bytes(2, "big")
            + b"\0"
            + count.to_bytes(3, "big")
            + body
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> ElementStatus:
        """Parse element status data, however short the answer.

        Complete descriptors are always returned; a cut last descriptor is returned
        with ``partial=True`` when its 12 fixed bytes arrived; ``truncated`` says the
        data ended before what the headers announced.

        Raises:
            DecodeError: fewer than 8 bytes, a descriptor length below 12 (or below
                the volume tags it must hold), or a page byte count that is not a
                multiple of the descriptor length.
        """
        view = memoryview(bytes(buf))
        if len(view) < _HEADER:
            raise DecodeError(f"element status: need an 8-byte header, got {len(view)} bytes")
        first = u16(view, 0)
        number = u16(view, 2)
        byte_count = u24(view, 5)
        end = min(len(view), _HEADER + byte_count)
        truncated = len(view) < _HEADER + byte_count
        pages: list[ElementStatusPage] = []
        pos = _HEADER
        while pos < end:
            if end - pos < _HEADER:
                truncated = True
                break
            etype = view[pos]
            pv = bool(view[pos + 1] & 0x80)
            av = bool(view[pos + 1] & 0x40)
            dlen = u16(view, pos + 2)
            pcount = u24(view, pos + 5)
            minimum = DESCRIPTOR_FIXED_LENGTH + VOLUME_TAG_LENGTH * (int(pv) + int(av))
            if pcount and dlen < minimum:
                raise DecodeError(
                    f"element status page at byte {pos}: descriptor length {dlen} "
                    f"is below the {minimum} bytes its layout needs"
                )
            if dlen and pcount % dlen:
                raise DecodeError(
                    f"element status page at byte {pos}: byte count {pcount} is not a "
                    f"multiple of the descriptor length {dlen}"
                )
            start = pos + _HEADER
            stop = start + pcount
            if stop > end:
                truncated = True
                stop = end
            descriptors: list[ElementDescriptor] = []
            at = start
            while at < stop:
                chunk = view[at : min(at + dlen, stop)]
                if len(chunk) < dlen:
                    if len(chunk) >= DESCRIPTOR_FIXED_LENGTH:
                        descriptors.append(
                            attrs.evolve(
                                ElementDescriptor.from_bytes(chunk, pvoltag=pv, avoltag=av),
                                partial=True,
                            )
                        )
                    break
                descriptors.append(ElementDescriptor.from_bytes(chunk, pvoltag=pv, avoltag=av))
                at += dlen
            pages.append(
                ElementStatusPage(
                    element_type=etype,
                    descriptors=tuple(descriptors),
                    pvoltag=pv,
                    avoltag=av,
                    descriptor_length=dlen,
                    byte_count=pcount,
                )
            )
            pos = start + pcount
        return cls(
            first_element_address=first,
            number_of_elements=number,
            pages=tuple(pages),
            byte_count=byte_count,
            truncated=truncated,
        )
