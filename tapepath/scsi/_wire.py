"""Bounded byte access and field range checks shared by every codec.

Builders call :func:`check_uint` / :func:`check_flag` on every field so a value that
does not fit raises :class:`ValueError` naming the field (never silent truncation).
Parsers read through :func:`u8`, :func:`u16`, ... which raise
:class:`~tapepath.errors.DecodeError` instead of ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any, TypeAlias, TypeVar

import attrs
from attrs import Attribute

from tapepath.errors import DecodeError

Bytes: TypeAlias = "bytes | bytearray | memoryview"

__all__ = [
    "Bytes",
    "be_int",
    "check_flag",
    "check_uint",
    "flag_field",
    "items_of",
    "need",
    "parse_entries",
    "trusted",
    "u8",
    "u16",
    "u24",
    "u32",
    "u48",
    "u64",
    "uint",
    "uint_field",
]


def check_uint(name: str, value: int, bits: int) -> int:
    """Return ``value`` if it is an int in ``0 .. 2**bits - 1``, else raise ValueError.

    Args:
        name: the field's name, quoted in the error.
        value: the value to check.
        bits: the width of the field in bits.

    Raises:
        ValueError: the value is negative, too large or not an int.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0 or value >> bits:
        raise ValueError(f"{name}={value} does not fit in {bits} bits (0..{(1 << bits) - 1})")
    return value


def check_flag(name: str, value: bool) -> bool:
    """Return ``value`` if it is a bool, else raise ValueError naming the field."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def need(buf: Bytes, length: int, what: str) -> None:
    """Raise DecodeError unless ``buf`` holds at least ``length`` bytes.

    Args:
        buf: the buffer being parsed.
        length: the number of bytes the parser needs.
        what: what is being parsed, for the message.
    """
    if len(buf) < length:
        raise DecodeError(f"{what}: need {length} bytes, got {len(buf)}")


_T = TypeVar("_T")


def parse_entries(
    region: Bytes,
    offset: int,
    end: int,
    parse: Callable[[Bytes, int], tuple[_T, int]],
    *,
    complete: bool,
) -> tuple[_T, ...]:
    """Parse the variable-length entries of a list from ``offset`` up to ``end``.

    Args:
        region: the bytes holding the list (``parse`` must not read past its end).
        offset: where the first entry starts.
        end: where the list ends.
        parse: reads one entry at an offset; returns it and the offset after it.
        complete: the whole list is there. When False (an allocation length cut the
            list short), a last entry that does not parse is dropped; when True its
            DecodeError is raised.

    Raises:
        DecodeError: an entry of a complete list does not parse.
    """
    found: list[_T] = []
    while offset < end:
        try:
            entry, offset = parse(region, offset)
        except DecodeError:
            if complete:
                raise
            break
        found.append(entry)
    return tuple(found)


def be_int(buf: Bytes, start: int, size: int, *, signed: bool = False) -> int:
    """Read a big-endian integer of ``size`` bytes at ``start``, unchecked.

    For fields the parser has already length-checked (a CDB of a known length, data
    after a ``need``); a short buffer gives a smaller value, never an error.
    """
    return int.from_bytes(buf[start : start + size], "big", signed=signed)


def uint(buf: Bytes, offset: int, size: int, what: str = "field") -> int:
    """Read a big-endian unsigned integer of ``size`` bytes at ``offset``.

    Raises:
        DecodeError: the buffer ends before ``offset + size``.
    """
    end = offset + size
    if offset < 0 or end > len(buf):
        raise DecodeError(f"{what}: bytes {offset}..{end - 1} are past the end ({len(buf)} bytes)")
    return int.from_bytes(buf[offset:end], "big")


def u8(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read one byte at ``offset`` (DecodeError when past the end)."""
    if offset < 0 or offset >= len(buf):
        raise DecodeError(f"{what}: byte {offset} is past the end ({len(buf)} bytes)")
    return buf[offset]


def u16(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read a big-endian 16-bit unsigned integer."""
    return uint(buf, offset, 2, what)


def u24(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read a big-endian 24-bit unsigned integer."""
    return uint(buf, offset, 3, what)


def u32(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read a big-endian 32-bit unsigned integer."""
    return uint(buf, offset, 4, what)


def u48(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read a big-endian 48-bit unsigned integer."""
    return uint(buf, offset, 6, what)


def u64(buf: Bytes, offset: int, what: str = "field") -> int:
    """Read a big-endian 64-bit unsigned integer."""
    return uint(buf, offset, 8, what)


def uint_field(bits: int) -> Callable[[Any, Attribute[int], int], None]:
    """An attrs validator that checks an int field fits in ``bits`` bits.

    Example:
        ``allocation_length: int = field(default=0, validator=uint_field(16))``
    """

    def _validate(_inst: Any, attr: Attribute[int], value: int) -> None:
        check_uint(attr.name, value, bits)

    return _validate


def flag_field(_inst: Any, attr: Attribute[bool], value: bool) -> None:
    """An attrs validator that checks a field is a bool."""
    check_flag(attr.name, value)


def items_of(kind: type) -> Callable[[Any, Attribute[Any], tuple[Any, ...]], None]:
    """An attrs validator that checks every item of a tuple field is a ``kind``.

    Example:
        ``pages: tuple[ModePage, ...] = field(default=(), validator=items_of(ModePage))``
    """
    article = "an" if kind.__name__[:1] in "AEIOU" else "a"

    def _validate(_inst: Any, attr: Attribute[Any], value: tuple[Any, ...]) -> None:
        for i, v in enumerate(value):
            if not isinstance(v, kind):
                raise ValueError(f"{attr.name}[{i}] is not {article} {kind.__name__}")

    return _validate


#: Per attrs class: the constructor :func:`trusted` returns for it.
_TRUSTED_BUILDERS: dict[type, Callable[..., Any]] = {}


def _trusted_builder(cls: type) -> Callable[..., Any]:
    """Compile, once per class, a constructor that sets every field without checks.

    The constructor takes the fields as keyword arguments (defaults as the class has
    them) and stores each straight into its slot (the slot descriptor's ``__set__``,
    or ``object.__setattr__`` for a class without slots), as attrs' own ``__init__``
    does for a frozen class, minus the converters, validators and post-init hook.
    """
    if hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} has __attrs_post_init__: build it normally")
    namespace: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_set": object.__setattr__}
    params, body = [], []
    for a in attrs.fields(cls):
        if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            raise TypeError(f"{cls.__name__}.{a.name} has a factory default")
        if a.default is attrs.NOTHING:
            params.append(a.name)
        else:
            namespace[f"_default_{a.name}"] = a.default
            params.append(f"{a.name}=_default_{a.name}")
        slot = next((vars(k)[a.name] for k in cls.__mro__ if a.name in vars(k)), None)
        if isinstance(slot, MemberDescriptorType):
            namespace[f"_set_{a.name}"] = slot.__set__
            body.append(f"    _set_{a.name}(inst, {a.name})")
        else:
            body.append(f"    _set(inst, {a.name!r}, {a.name})")
    head = [f"def build(*, {', '.join(params)}):", "    inst = _new(_cls)"]
    source = "\n".join([*head, *body, "    return inst"])
    exec(compile(source, f"<trusted {cls.__qualname__}>", "exec"), namespace)
    builder: Callable[..., Any] = namespace["build"]
    _TRUSTED_BUILDERS[cls] = builder
    return builder


def trusted(cls: type[_T]) -> Callable[..., _T]:
    """The parsers' fast constructor for an attrs ``@frozen`` class: ``trusted(C)(**fields)``.

    The constructor (compiled once per class) runs no validator and no converter, so
    every value must already be what the field holds after conversion (an enum member
    where a converter makes one) and within the field's range, as the parser's own
    bounded reads guarantee (a byte is 0..255, ``buf[1] & 7`` fits 3 bits, ...).
    Builders and anything a user calls keep the normal, fully validated construction.
    It takes the fields as keyword arguments; a field left out takes its default, a
    missing required field or an unknown name is a TypeError.

    Args:
        cls: an attrs class without ``__attrs_post_init__`` or factory defaults.

    Raises:
        TypeError: the class has ``__attrs_post_init__`` or a factory default.
    """
    return _TRUSTED_BUILDERS.get(cls) or _trusted_builder(cls)
