"""T10 ASC/ASCQ descriptions: :func:`asc_description` never fails.

The table (:mod:`tapepath.scsi.asc_data`) is generated from T10's numeric ASC/ASCQ list by
``scripts/gen_asc_table.py``. On top of the exact entries this module resolves:

- the parameterised T10 ranges: 40h/80h-FFh (diagnostic failure on component NN),
  4Dh/NN (tagged overlapped commands, NN = task tag), 70h/NN (decompression exception
  short algorithm id of NN);
- vendor-specific codes: ASC 80h-FFh, and ASCQ 80h-FFh under a standard ASC;
- anything else: a fallback text naming the two bytes.
"""

from __future__ import annotations

import enum
from functools import lru_cache

from tapepath.scsi.asc_data import ASC_RANGE_TEXT, ASC_TEXT, ENTRY_COUNT

__all__ = ["ENTRY_COUNT", "AscKind", "asc_description", "asc_kind", "asc_lookup"]


class AscKind(enum.Enum):
    """Where an ASC/ASCQ pair's text comes from."""

    STANDARD = "standard"
    """An exact entry of T10's list."""
    RANGE = "range"
    """A T10 entry whose ASCQ is a parameter (40h/NN, 4Dh/NN, 70h/NN)."""
    VENDOR = "vendor"
    """Vendor specific: ASC 80h-FFh, or ASCQ 80h-FFh under a standard ASC."""
    UNKNOWN = "unknown"
    """Not assigned by T10 (reserved), or newer than the table."""


def _check(asc: int, ascq: int) -> None:
    if not (0 <= asc <= 0xFF and 0 <= ascq <= 0xFF):
        raise ValueError(f"asc and ascq must be bytes (0..255), got {asc}, {ascq}")


def asc_lookup(asc: int, ascq: int) -> str | None:
    """Return T10's text for an exact or range entry, or None when T10 assigns none.

    Raises:
        ValueError: ``asc`` or ``ascq`` is not in 0..255.
    """
    _check(asc, ascq)
    text = ASC_TEXT.get(asc << 8 | ascq)
    if text is not None:
        return text
    template = ASC_RANGE_TEXT.get(asc)
    if template is None or (asc == 0x40 and ascq < 0x80):
        return None
    if asc == 0x40:
        return f"Diagnostic failure on component {ascq:02X}h"
    if asc == 0x4D:
        return f"Tagged overlapped commands (task tag {ascq:02X}h)"
    if asc == 0x70:
        return f"Decompression exception short algorithm ID of {ascq:02X}h"
    return f"{template} (NN={ascq:02X}h)"


def asc_kind(asc: int, ascq: int) -> AscKind:
    """Classify an ASC/ASCQ pair by where its text comes from (see :class:`AscKind`)."""
    _check(asc, ascq)
    if (asc << 8 | ascq) in ASC_TEXT:
        return AscKind.STANDARD
    if asc_lookup(asc, ascq) is not None:
        return AscKind.RANGE
    if asc >= 0x80 or ascq >= 0x80:
        return AscKind.VENDOR
    return AscKind.UNKNOWN


@lru_cache(maxsize=1024)
def asc_description(asc: int, ascq: int) -> str:
    """Return the description of an ASC/ASCQ pair; never raises for bytes.

    Args:
        asc: the additional sense code (0..255).
        ascq: the additional sense code qualifier (0..255).

    Returns:
        T10's text in sentence case, for example ``asc_description(0x04, 0x0B)`` is
        ``"Logical unit not accessible, target port in standby state"``; a vendor
        specific text for ASC 80h-FFh or ASCQ 80h-FFh; otherwise
        ``"ASC/ASCQ 0xNN 0xNN (unknown)"``.

    Raises:
        ValueError: ``asc`` or ``ascq`` is not in 0..255.
    """
    text = asc_lookup(asc, ascq)
    if text is not None:
        return text
    if asc >= 0x80:
        return f"Vendor specific ASC 0x{asc:02X}, ASCQ 0x{ascq:02X}"
    if ascq >= 0x80:
        return f"Vendor specific ASCQ 0x{ascq:02X} for ASC 0x{asc:02X}"
    return f"ASC/ASCQ 0x{asc:02X} 0x{ascq:02X} (unknown)"
