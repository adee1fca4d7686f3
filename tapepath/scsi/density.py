"""REPORT DENSITY SUPPORT (44h, SSC-3/4): the command and its data.

With MEDIUM TYPE=0 the data lists density support descriptors (52 bytes each); with
MEDIUM TYPE=1 it lists medium type descriptors (56 bytes each). Text fields are
ASCII, space padded; they are decoded as Latin-1 (every byte maps to a character, so
nothing raises) and trailing blanks and NULs are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from tapepath.errors import DecodeError
from tapepath.scsi._wire import Bytes, flag_field, uint_field
from tapepath.scsi.cdb import check_opcode

__all__ = [
    "DensityDescriptor",
    "DensitySupport",
    "MediumTypeDescriptor",
    "ReportDensitySupport",
]


def _text_field(size: int) -> Callable[[Any, Attribute[str], str], None]:
    def _validate(_inst: Any, attr: Attribute[str], value: str) -> None:
        if not isinstance(value, str):
            raise ValueError(f"{attr.name} must be a str")
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{attr.name} must be Latin-1 text") from None
        if len(raw) > size:
            raise ValueError(f"{attr.name} is longer than {size} bytes")

    return _validate


def _text(buf: Bytes, start: int, size: int) -> str:
    return bytes(buf[start : start + size]).decode("latin-1").rstrip(" \x00")


def _pad(value: str, size: int) -> bytes:
    return value.encode("latin-1").ljust(size, b" ")


def _int(buf: Bytes, start: int, size: int) -> int:
    return int.from_bytes(buf[start : start + size], "big")


@frozen
class ReportDensitySupport:
    """REPORT DENSITY SUPPORT (44h).

    Attributes:
        media: report only what the mounted medium supports.
        medium_type: report medium types instead of densities.
        allocation_length: 16 bits.
        control: the CDB control byte.
    """

    OPCODE: ClassVar[int] = 0x44
    media: bool = field(default=False, validator=flag_field)
    medium_type: bool = field(default=False, validator=flag_field)
    allocation_length: int = field(default=0xFFFF, validator=uint_field(16))
    control: int = field(default=0, validator=uint_field(8))

    def to_bytes(self) -> bytes:
        """Return the 10-byte CDB."""
        flags = int(self.medium_type) << 1 | int(self.media)
        return (
            bytes((self.OPCODE, flags, 0, 0, 0, 0, 0))
            + self.allocation_length.to_bytes(2, "big")
            + bytes((self.control,))
        )

    @classmethod
    def from_bytes(cls, cdb: Bytes) -> ReportDensitySupport:
        """Parse a REPORT DENSITY SUPPORT CDB."""
        check_opcode(cdb, cls.OPCODE, 10, "REPORT DENSITY SUPPORT")
        if cdb[1] & 0xFC or any(cdb[2:7]):
            raise DecodeError("REPORT DENSITY SUPPORT: reserved bits set in bytes 1-6")
        return cls(bool(cdb[1] & 1), bool(cdb[1] & 2), _int(cdb, 7, 2), cdb[9])

    @property
    def data_in_length(self) -> int:
        """The allocation length."""
        return self.allocation_length


@frozen
class DensityDescriptor:
    """One density support descriptor (52 bytes).

    Attributes:
        primary_code: the primary density code.
        secondary_code: the secondary density code.
        wrtok: the drive can write this density (on the mounted medium, with MEDIA).
        dup: the primary code is reported more than once.
        deflt: the drive's default density.
        dlv: SSC-4 descriptor length valid (the length field holds 31h).
        bits_per_mm: 24 bits.
        media_width: in tenths of millimetres (16 bits).
        tracks: 16 bits.
        capacity: in megabytes (10**6 bytes, 32 bits).
        assigning_organization: up to 8 characters.
        density_name: up to 8 characters.
        description: up to 20 characters.
    """

    LENGTH: ClassVar[int] = 52
    primary_code: int = field(validator=uint_field(8))
    secondary_code: int = field(default=0, validator=uint_field(8))
    wrtok: bool = field(default=False, validator=flag_field)
    dup: bool = field(default=False, validator=flag_field)
    deflt: bool = field(default=False, validator=flag_field)
    dlv: bool = field(default=False, validator=flag_field)
    bits_per_mm: int = field(default=0, validator=uint_field(24))
    media_width: int = field(default=0, validator=uint_field(16))
    tracks: int = field(default=0, validator=uint_field(16))
    capacity: int = field(default=0, validator=uint_field(32))
    assigning_organization: str = field(default="", validator=_text_field(8))
    density_name: str = field(default="", validator=_text_field(8))
    description: str = field(default="", validator=_text_field(20))

    def to_bytes(self) -> bytes:
        """The 52 descriptor bytes."""
        flags = int(self.wrtok) << 7 | int(self.dup) << 6 | int(self.deflt) << 5 | int(self.dlv)
        length = self.LENGTH - 3 if self.dlv else 0
        return (
            bytes((self.primary_code, self.secondary_code, flags))
            + length.to_bytes(2, "big")
            + self.bits_per_mm.to_bytes(3, "big")
            + self.media_width.to_bytes(2, "big")
            + self.tracks.to_bytes(2, "big")
            + self.capacity.to_bytes(4, "big")
            + _pad(self.assigning_organization, 8)
            + _pad(self.density_name, 8)
            + _pad(self.description, 20)
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> DensityDescriptor:
        """Parse 52 bytes (DecodeError when short)."""
        if len(buf) < cls.LENGTH:
            raise DecodeError(f"density descriptor: need 52 bytes, got {len(buf)}")
        return cls(
            primary_code=buf[0],
            secondary_code=buf[1],
            wrtok=bool(buf[2] & 0x80),
            dup=bool(buf[2] & 0x40),
            deflt=bool(buf[2] & 0x20),
            dlv=bool(buf[2] & 0x01),
            bits_per_mm=_int(buf, 5, 3),
            media_width=_int(buf, 8, 2),
            tracks=_int(buf, 10, 2),
            capacity=_int(buf, 12, 4),
            assigning_organization=_text(buf, 16, 8),
            density_name=_text(buf, 24, 8),
            description=_text(buf, 32, 20),
        )


def _codes(_inst: Any, attr: Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    if len(value) > 9 or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise ValueError(f"{attr.name} must hold at most 9 density codes of 0..255")


def _int_tuple(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@frozen
class MediumTypeDescriptor:
    """One medium type descriptor (56 bytes, REPORT DENSITY SUPPORT with MEDIUM TYPE).

    Attributes:
        medium_type: the medium type code.
        primary_density_codes: the densities this medium supports (at most 9).
        media_width: in tenths of millimetres.
        medium_length: in metres.
        assigning_organization: up to 8 characters.
        medium_type_name: up to 8 characters.
        description: up to 20 characters.
    """

    LENGTH: ClassVar[int] = 56
    medium_type: int = field(validator=uint_field(8))
    primary_density_codes: tuple[int, ...] = field(
        default=(), converter=_int_tuple, validator=_codes
    )
    media_width: int = field(default=0, validator=uint_field(16))
    medium_length: int = field(default=0, validator=uint_field(16))
    assigning_organization: str = field(default="", validator=_text_field(8))
    medium_type_name: str = field(default="", validator=_text_field(8))
    description: str = field(default="", validator=_text_field(20))

    def to_bytes(self) -> bytes:
        """The 56 descriptor bytes (descriptor length 34h)."""
        codes = bytes(self.primary_density_codes)
        return (
            bytes((self.medium_type, 0))
            + (self.LENGTH - 4).to_bytes(2, "big")
            + bytes((len(codes),))
            + codes.ljust(9, b"\0")
            + self.media_width.to_bytes(2, "big")
            + self.medium_length.to_bytes(2, "big")
            + b"\0\0"
            + _pad(self.assigning_organization, 8)
            + _pad(self.medium_type_name, 8)
            + _pad(self.description, 20)
        )

    @classmethod
    def from_bytes(cls, buf: Bytes) -> MediumTypeDescriptor:
        """Parse 56 bytes (a density count above 9 is clipped; DecodeError when short)."""
        if len(buf) < cls.LENGTH:
            raise DecodeError(f"medium type descriptor: need 56 bytes, got {len(buf)}")
        count = min(buf[4], 9)
        return cls(
            medium_type=buf[0],
            primary_density_codes=tuple(buf[5 : 5 + count]),
            media_width=_int(buf, 14, 2),
            medium_length=_int(buf, 16, 2),
            assigning_organization=_text(buf, 20, 8),
            medium_type_name=_text(buf, 28, 8),
            description=_text(buf, 36, 20),
        )


def _descriptor_tuple(
    values: Iterable[DensityDescriptor | MediumTypeDescriptor],
) -> tuple[DensityDescriptor | MediumTypeDescriptor, ...]:
    return tuple(values)


@frozen
class DensitySupport:
    """REPORT DENSITY SUPPORT data: a 4-byte header and descriptors of one kind.

    Attributes:
        descriptors: density descriptors, or medium type descriptors.
        truncated: the data ended before the announced length (set by the parser;
            only complete descriptors are kept).
    """

    descriptors: tuple[DensityDescriptor | MediumTypeDescriptor, ...] = field(
        default=(), converter=_descriptor_tuple
    )
    truncated: bool = field(default=False, validator=flag_field, eq=False)

    def __attrs_post_init__(self) -> None:
        kinds = {type(d) for d in self.descriptors}
        if len(kinds) > 1 or not kinds <= {DensityDescriptor, MediumTypeDescriptor}:
            raise ValueError(
                "descriptors must all be DensityDescriptor or all MediumTypeDescriptor"
            )

    @property
    def densities(self) -> tuple[DensityDescriptor, ...]:
        """The density descriptors (empty for a medium type report)."""
        return tuple(d for d in self.descriptors if isinstance(d, DensityDescriptor))

    @property
    def default(self) -> DensityDescriptor | None:
        """The descriptor with DEFLT set, if any."""
        return next((d for d in self.densities if d.deflt), None)

    def to_bytes(self) -> bytes:
        """The header (available length) and the descriptors."""
        body = b"".join(d.to_bytes() for d in self.descriptors)
        if len(body) + 2 > 0xFFFF:
            raise ValueError("too many descriptors for the 16-bit length")
        return (len(body) + 2).to_bytes(2, "big") + b"\0\0" + body

    @classmethod
    def from_bytes(cls, buf: Bytes, *, medium_type: bool = False) -> DensitySupport:
        """Parse the data; ``medium_type`` says which descriptor kind the CDB asked for.

        Raises:
            DecodeError: fewer than 4 bytes.
        """
        if len(buf) < 4:
            raise DecodeError(f"density support: need a 4-byte header, got {len(buf)} bytes")
        announced = 2 + _int(buf, 0, 2)
        end = min(len(buf), announced)
        kind: type[DensityDescriptor] | type[MediumTypeDescriptor] = (
            MediumTypeDescriptor if medium_type else DensityDescriptor
        )
        items: list[DensityDescriptor | MediumTypeDescriptor] = []
        pos = 4
        while pos + kind.LENGTH <= end:
            items.append(kind.from_bytes(buf[pos : pos + kind.LENGTH]))
            pos += kind.LENGTH
        return cls(tuple(items), truncated=len(buf) < announced)
