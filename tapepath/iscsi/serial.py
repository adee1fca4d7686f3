"""32-bit serial number arithmetic (RFC 1982) for CmdSN, StatSN, DataSN and R2TSN."""

from __future__ import annotations

__all__ = ["serial_add", "serial_diff", "serial_le", "serial_lt"]

_HALF = 1 << 31
_MASK = 0xFFFFFFFF


def serial_add(a: int, n: int) -> int:
    """``a + n`` modulo 2**32."""
    return (a + n) & _MASK


def serial_diff(a: int, b: int) -> int:
    """The signed distance from ``b`` to ``a`` (``a - b``), in -2**31 .. 2**31 - 1."""
    d = (a - b) & _MASK
    return d - (1 << 32) if d >= _HALF else d


def serial_lt(a: int, b: int) -> bool:
    """True when ``a`` comes before ``b`` in serial order."""
    return a != b and serial_diff(a, b) < 0


def serial_le(a: int, b: int) -> bool:
    """True when ``a`` equals ``b`` or comes before it."""
    return a == b or serial_diff(a, b) < 0
