"""CRC32C header and data digests (RFC 7143 section 12.1, via the ``crc32c`` package)."""

from __future__ import annotations

import struct
from typing import Any

from tapepath.errors import TransportUnavailableError

_crc32c: Any
try:
    import crc32c as _crc32c
except ImportError:  # pragma: no cover - exercised only without the extra
    _crc32c = None

__all__ = ["crc32c", "digest_bytes", "hardware_accelerated"]

_LE32 = struct.Struct("<I")


def crc32c(*parts: bytes | bytearray | memoryview) -> int:
    """The CRC32C of the concatenation of ``parts``.

    Raises:
        TransportUnavailableError: the ``crc32c`` package is not installed
            (``pip install tapepath[iscsi]``).
    """
    if _crc32c is None:  # pragma: no cover
        raise TransportUnavailableError("iSCSI digests need the crc32c package (tapepath[iscsi])")
    value = 0
    for part in parts:
        value = _crc32c.crc32c(part, value)
    return int(value)


def digest_bytes(*parts: bytes | bytearray | memoryview) -> bytes:
    """The 4-byte digest as it travels on the wire.

    iSCSI sends the CRC32C least significant byte first (the byte order the RFC's
    examples show), which is little-endian packing of the integer.
    """
    return _LE32.pack(crc32c(*parts))


def hardware_accelerated() -> bool:
    """True when the crc32c package uses the CPU's CRC32 instruction."""
    return bool(_crc32c is not None and getattr(_crc32c, "hardware_based", False))
