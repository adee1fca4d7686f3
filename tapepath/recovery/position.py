"""The logical position of a tape and how each completed command moves it.

:class:`TrackedPosition` is what recovery knows of the position; the functions here
compute, from a command's CDB, status and sense (FILEMARK, EOM, ILI, INFORMATION) or a
READ POSITION answer, where it leaves the tape. They are pure:
:class:`~tapepath.recovery.tracking.TapeState` applies them to the command stream.
"""

from __future__ import annotations

import attrs
from attrs import frozen

from tapepath.errors import DecodeError
from tapepath.scsi.position import (
    PositionExtended,
    PositionLong,
    PositionShort,
    parse_position,
)
from tapepath.scsi.sense import Sense
from tapepath.transport.base import Outcome, Response

__all__ = ["TrackedPosition", "position_known"]

_GOOD = 0x00


@frozen
class TrackedPosition:
    """The logical position of a tape as recovery knows it.

    Attributes:
        block: the logical object number (records and filemarks before the position),
            or, when ``known`` is False, the last one known good.
        file: the file number (filemarks before the position), None when not known.
        known: False when no completed command proves the block number.
    """

    block: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    file: int | None = attrs.field(default=None)
    known: bool = attrs.field(default=False)

    def moved(self, delta: int, files: int = 0) -> TrackedPosition:
        """The position ``delta`` objects (and ``files`` filemarks) further on."""
        block = self.block + delta
        if block < 0:
            return TrackedPosition(self.block, None, False)
        file = None if self.file is None else self.file + files
        if file is not None and file < 0:
            file = None
        return TrackedPosition(block, file, self.known)

    def forgotten(self) -> TrackedPosition:
        """The same, marked unknown (the values stay as the last known good)."""
        return TrackedPosition(self.block, self.file, False)

    def __str__(self) -> str:
        f = "?" if self.file is None else str(self.file)
        return f"block {self.block} file {f}" + ("" if self.known else " (unknown)")


def _position(block: int, file: int | None, known: bool) -> TrackedPosition:
    """A TrackedPosition without the validators' cost (``block`` is known to be >= 0)."""
    p = object.__new__(TrackedPosition)
    object.__setattr__(p, "block", block)
    object.__setattr__(p, "file", file)
    object.__setattr__(p, "known", known)
    return p


def _info(s: Sense | None) -> int | None:
    return None if s is None else s.information


def _refind(
    cdb: bytes, r: Response, was_known: bool, pos: TrackedPosition
) -> tuple[str, int] | None:
    """How to find the (unknown) position after ``cdb`` again, or None."""
    if r.outcome is not Outcome.OK or r.status != _GOOD:
        return None
    op = cdb[0]
    if op in (0x0A, 0x10):  # a write leaves the tape at end of data
        return ("eod", 0)
    if op in (0x11, 0x91) and len(cdb) >= 6:
        code = cdb[1] & 0x0F
        if code == 3:
            return ("eod", 0)
        raw = cdb[2:5] if op == 0x11 else cdb[4:12]
        if code == 1 and was_known and pos.file is not None and _signed(raw) > 0:
            return ("file", pos.file)
    return None


_MOVES = frozenset({0x01, 0x08, 0x0A, 0x10, 0x11, 0x19, 0x1B, 0x2B, 0x34, 0x91, 0x92})
"""Opcodes that move the tape or report its position."""


def _from_read_position(
    cdb: bytes, data: bytes | memoryview, pos: TrackedPosition
) -> TrackedPosition | None:
    sa = cdb[1] & 0x1F if len(cdb) > 1 else 0
    try:
        p = parse_position(sa, bytes(data))
    except DecodeError:
        return None
    if not position_known(p):
        return pos.forgotten()
    if isinstance(p, PositionLong):
        return TrackedPosition(p.logical_object_number, p.logical_file_identifier, True)
    block = p.first_location
    file = pos.file if pos.known and pos.block == block else None
    return TrackedPosition(block, file, True)


def position_known(p: PositionShort | PositionLong | PositionExtended) -> bool:
    """Whether a READ POSITION answer gives a position to trust.

    Not when a flag says unknown (LONU, MPU in the long form; LOLU, PERR, BYCU, LOCU in
    the short and extended forms), nor when it reports block 0 without BOP (tgtd's
    long form is all zeros: block 0 of partition 0 is the beginning of the partition).
    """
    if isinstance(p, PositionLong):
        return not (p.lonu or p.mpu) and (p.bop or p.logical_object_number != 0)
    return not (p.lolu or p.perr or p.bycu or p.locu) and (p.bop or p.first_location != 0)


def _count(cdb: bytes) -> int:
    return int.from_bytes(cdb[2:5], "big")


def _after_write(cdb: bytes, good: bool, s: Sense | None, pos: TrackedPosition) -> TrackedPosition:
    fixed = bool(cdb[1] & 0x01)
    n = _count(cdb) if fixed else 1
    if good:
        return pos.moved(n)
    assert s is not None
    info = _info(s) or 0
    if s.sense_key == 0x00 and s.eom:  # early warning: all written (minus INFORMATION)
        return pos.moved(n - info if fixed else 1)
    if s.sense_key == 0x0D:  # VOLUME OVERFLOW: what INFORMATION says was not written
        return pos.moved(n - info) if fixed else pos
    return pos.forgotten()


def _after_read(cdb: bytes, good: bool, s: Sense | None, pos: TrackedPosition) -> TrackedPosition:
    fixed = bool(cdb[1] & 0x01)
    n = _count(cdb) if fixed else 1
    if good:
        return pos.moved(n)
    assert s is not None
    info = _info(s)
    if s.sense_key == 0x08:  # BLANK CHECK: stopped at end of data
        if not fixed:
            return pos
        return pos.moved(n - info) if info is not None else pos.forgotten()
    if s.sense_key != 0x00 or s.eom:
        return pos.forgotten()
    if not fixed:  # one record or one filemark passed
        return pos.moved(1, 1 if s.filemark else 0)
    if info is None:
        return pos.forgotten()
    if s.filemark:
        return pos.moved(n - info + 1, 1)
    if s.ili:
        return pos.moved(n - info + 1)
    return pos.forgotten()


def _signed(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _after_space(cdb: bytes, good: bool, s: Sense | None, pos: TrackedPosition) -> TrackedPosition:
    if cdb[0] == 0x11:
        code, count = cdb[1] & 0x0F, _signed(cdb[2:5])
    else:
        if len(cdb) < 12:
            return pos.forgotten()
        code, count = cdb[1] & 0x0F, _signed(cdb[4:12])
    if count == 0 and code in (0, 1):  # SPACE of nothing: no motion
        return pos
    if code != 0:  # filemarks, sequential filemarks, end of data: the block is not known
        if code == 1 and good and pos.file is not None:
            return TrackedPosition(pos.block, pos.file + count, False)
        return pos.forgotten()
    if good:
        return pos.moved(count)
    assert s is not None
    info = _info(s)
    if info is None or s.sense_key not in (0x00, 0x08):
        return pos.forgotten()
    if s.sense_key == 0x08:  # BLANK CHECK at end of data (forward)
        return pos.moved(count - info) if count >= 0 else pos.forgotten()
    if s.filemark:  # stopped past the filemark (forward) or before it (backward)
        if count >= 0:
            return pos.moved(count - info + 1, 1)
        return pos.moved(count + info - 1, -1)
    if s.eom and count < 0:  # reached the beginning
        return TrackedPosition(0, 0, True)
    return pos.forgotten()


def _after_locate(cdb: bytes, good: bool, pos: TrackedPosition) -> TrackedPosition:
    if not good:
        return pos.forgotten()
    if cdb[0] == 0x2B:
        if len(cdb) < 10 or cdb[1] & 0x04 or cdb[1] & 0x02:  # BT or CP: not tracked
            return pos.forgotten()
        return _located(int.from_bytes(cdb[3:7], "big"), pos)
    if len(cdb) < 16 or cdb[1] & 0x02 or (cdb[1] >> 3) & 0x07 != 0:
        return pos.forgotten()  # CP, or to a file / end of data
    return _located(int.from_bytes(cdb[4:12], "big"), pos)


def _located(block: int, pos: TrackedPosition) -> TrackedPosition:
    if pos.known and block == pos.block:
        return pos
    if block == 0:
        return TrackedPosition(0, 0, True)
    return TrackedPosition(block, None, True)
