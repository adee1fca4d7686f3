"""READ ELEMENT STATUS (B8h, SMC-3): the command and the element status data.

The data is an 8-byte header followed by element status pages, one per element type;
each page holds fixed-length element descriptors. :meth:`ElementStatus.from_bytes`
copes with answers cut short by the allocation length (complete descriptors are kept,
``truncated`` is set) and with tgtd's answer, whose byte counts announce 8 bytes more
than it sends: the last descriptor arrives cut, and is still returned with what it
holds (address, flags, source, volume tag identifier) and ``partial=True``.

The descriptor classes live in :mod:`tapepath.scsi.element_descriptor` and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import ClassVar

import attrs
from attrs import field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, check_uint, flag_field, u16, u24, uint_field
from tapepath.scsi.cdb import check_opcode
from tapepath.scsi.element_descriptor import (
    DESCRIPTOR_FIXED_LENGTH,
    VOLUME_TAG_LENGTH,
    DeviceIdentifier,
    ElementDescriptor,
    VolumeTag,
)

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


_HEADER = 8


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
