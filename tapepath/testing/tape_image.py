"""A cartridge's tape: records, filemarks and end of data, and the cartridge itself.

The tape is a list of logical objects: each is a record (``bytes``) or a filemark
(:data:`FILEMARK`). End of data is the end of the list. A logical position is an
index into the list (SSC's logical object identifier, the "block number" of READ
POSITION, which counts filemarks too). Writing anywhere discards everything after
the written objects, as a tape drive does.
"""

from __future__ import annotations

from typing import Final

from attrs import define, field

__all__ = ["FILEMARK", "Cartridge", "TapeImage", "pad_volume_tag"]


class _Filemark:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FILEMARK"


FILEMARK: Final = _Filemark()
"""The filemark object in :attr:`TapeImage.objects`."""


def pad_volume_tag(barcode: str) -> bytes:
    """The 32-byte volume identifier of a barcode, space padded (SMC primary volume tag).

    Raises:
        ValueError: the barcode is not printable ASCII or longer than 32 characters.
    """
    raw = barcode.encode("ascii", "replace")
    if not 1 <= len(raw) <= 32 or not barcode.isascii() or not all(0x20 <= b < 0x7F for b in raw):
        raise ValueError(f"barcode {barcode!r} must be 1..32 printable ASCII characters")
    return raw.ljust(32, b" ")


@define
class TapeImage:
    """The data on one tape (one partition).

    Attributes:
        objects: records (bytes) and filemarks, in order; end of data after the last.
        capacity: bytes the tape holds; writing past it is a VOLUME OVERFLOW.
        early_warning: bytes before the capacity where writes report EOM (early warning).
    """

    objects: list[bytes | _Filemark] = field(factory=list)
    capacity: int = 1 << 30
    early_warning: int = 1 << 20
    _used: int = field(default=-1, alias="_used", repr=False)

    def __attrs_post_init__(self) -> None:
        if self._used < 0:
            self._used = sum(len(o) for o in self.objects if isinstance(o, bytes))

    @property
    def eod(self) -> int:
        """The logical object number of end of data."""
        return len(self.objects)

    @property
    def used(self) -> int:
        """Bytes of records on the tape."""
        return self._used

    def records(self) -> list[bytes]:
        """The records, without filemarks."""
        return [o for o in self.objects if isinstance(o, bytes)]

    def files(self) -> list[list[bytes]]:
        """The records grouped into files (split at filemarks)."""
        out: list[list[bytes]] = [[]]
        for o in self.objects:
            if isinstance(o, bytes):
                out[-1].append(o)
            else:
                out.append([])
        return out

    def file_number(self, position: int) -> int:
        """The number of filemarks before ``position``."""
        return sum(1 for o in self.objects[:position] if o is FILEMARK)

    def truncate(self, position: int) -> None:
        """Discard everything from ``position`` on (new end of data)."""
        if position < len(self.objects):
            self._used -= sum(len(o) for o in self.objects[position:] if isinstance(o, bytes))
            del self.objects[position:]

    def append(self, obj: bytes | _Filemark) -> None:
        """Add one object at end of data."""
        self.objects.append(obj)
        if isinstance(obj, bytes):
            self._used += len(obj)

    def past_early_warning(self) -> bool:
        """True once the data reaches the early-warning zone."""
        return self._used >= self.capacity - self.early_warning

    def copy(self) -> TapeImage:
        """An independent copy (records are immutable bytes and are shared)."""
        return TapeImage(list(self.objects), self.capacity, self.early_warning)


@define(eq=False)
class Cartridge:
    """A tape cartridge: its barcode and its tape.

    Attributes:
        barcode: the label, up to 32 printable ASCII characters (or None: no label).
        image: the data on the tape.
        write_protected: the write-protect tab.
    """

    barcode: str | None
    image: TapeImage = field(factory=TapeImage)
    write_protected: bool = False

    def __attrs_post_init__(self) -> None:
        if self.barcode is not None:
            pad_volume_tag(self.barcode)  # validates

    @property
    def volume_tag(self) -> bytes:
        """The 36-byte primary volume tag: 32 bytes space padded, 2 reserved, 2 sequence."""
        if self.barcode is None:
            return bytes(36)
        return pad_volume_tag(self.barcode) + bytes(4)
