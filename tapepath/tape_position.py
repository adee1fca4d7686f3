"""Where the tape is: the tracked position, READ POSITION, and finding the tape again.

:class:`TapePosition` is what :meth:`tapepath.drive.TapeDrive.position` returns.
:class:`PositionKeeping` is the part of :class:`~tapepath.drive.TapeDrive` that tracks
the logical position (block and file number) after every command it completes, runs the
positional commands, and after a reported reset brings the tape back to the tracked
position (LOCATE by block, or REWIND and SPACE by file) before the next one, or raises
:class:`~tapepath.errors.AmbiguousPositionError`.
"""

from __future__ import annotations

import structlog
from attrs import field, frozen
from attrs.validators import in_, optional

from tapepath.errors import (
    AmbiguityError,
    AmbiguousPositionError,
    CheckConditionError,
    DecodeError,
    NoPathError,
    PathFailureError,
    TapepathError,
)
from tapepath.scsi._wire import flag_field, uint_field
from tapepath.scsi.position import PositionLong, PositionShort, ReadPosition
from tapepath.scsi.sense import SenseKey
from tapepath.scsi.tape import Locate10, Locate16, Rewind, Space6, SpaceCode
from tapepath.tape_modes import ModeKeeping
from tapepath.transport.base import Response

__all__ = ["PositionKeeping", "Relocate", "TapePosition", "Tracked"]

log = structlog.get_logger("tapepath.drive")

#: Sense keys after which the command did not run (the tape did not move).
_NOT_RUN_KEYS = frozenset(
    {SenseKey.NOT_READY, SenseKey.UNIT_ATTENTION, SenseKey.ILLEGAL_REQUEST, SenseKey.DATA_PROTECT}
)


@frozen
class TapePosition:
    """Where the tape is.

    Attributes:
        block: the logical object number (records and filemarks from the beginning of
            the partition), or None when neither the drive nor the tracking knows it.
        file: the file number (filemarks passed), or None when unknown.
        partition: the partition number.
        bop: at the beginning of the partition.
        eop: in the early-warning zone or past the end of the partition.
        source: ``"device"`` (READ POSITION answered) or ``"tracked"`` (the drive
            reported the position as unknown; this is the library's own account).
    """

    block: int | None = field(validator=optional(uint_field(64)))
    file: int | None = field(default=None, validator=optional(uint_field(64)))
    partition: int = field(default=0, validator=uint_field(32))
    bop: bool = field(default=False, validator=flag_field)
    eop: bool = field(default=False, validator=flag_field)
    source: str = field(default="device", validator=in_(("device", "tracked")))


@frozen
class Tracked:
    """The drive's position as the library counts it (internal to the drive).

    Attributes:
        block: the logical object number, None when not known.
        file: the file number, None when not known.
        file_start: see below.
    """

    block: int | None = None
    file: int | None = None
    file_start: bool = False
    """Just after a filemark (or at the beginning): REWIND and SPACE ``file`` filemarks
    find the place again even when ``block`` is unknown."""

    def moved(self, blocks: int, files: int = 0) -> Tracked:
        """The position after moving over ``blocks`` objects, ``files`` of them
        filemarks (negative: backwards; never before the beginning)."""
        return Tracked(
            None if self.block is None else max(self.block + blocks, 0),
            None if self.file is None else max(self.file + files, 0),
            files > 0 or (blocks == 0 and self.file_start),
        )


class Relocate(Exception):
    """Internal: a reset was reported before a positional command; restore the mode
    settings and locate back first."""


class PositionKeeping(ModeKeeping):
    """Position tracking and positional commands of a tape drive (a base of
    :class:`~tapepath.drive.TapeDrive`; it sets the attributes)."""

    long_timeout: float
    _tracked: Tracked
    _relocate: bool
    _seeded: bool
    _positional: bool
    _doubt: str | None
    _pending: TapepathError | None
    _pending_filemark: bool
    _moved: bool
    _ask_position: bool

    def _known_again(self) -> None:
        """The position is set by the application (rewind, locate, load): no doubt left."""
        self._relocate = False
        self._doubt = None
        self._ask_position = False

    def _medium_may_have_changed(self) -> None:
        """28/00: a load leaves the tape at its beginning, but a new I_T nexus can report
        this with the tape where it was. Ask the drive before the next positional
        command; only when it cannot say is the tape taken to be at the beginning."""
        self._known_again()
        self._clear_pending()
        self._tracked = Tracked(0, 0, True)
        self._ask_position = True
        if self._positional:
            raise Relocate

    def _check_doubt(self, what: str) -> None:
        if self._doubt is not None:
            raise AmbiguousPositionError(
                f"{what}: not sent: the tape position is in doubt ({self._doubt}); rewind(), "
                "locate(), or a position() the drive can answer, clears it"
            )

    def _lose_position(self) -> None:
        """Forget the tracked position; the next positional command asks the drive."""
        self._tracked = Tracked()
        self._seeded = False

    def _clear_pending(self) -> None:
        self._pending = None
        self._pending_filemark = False

    def _locate_back(self) -> None:
        """After a reported reset, bring the tape back to the tracked position.

        By block (LOCATE) when the block is known, else by file (REWIND, then SPACE over
        ``file`` filemarks) when the tape was just after a filemark; otherwise, or when
        the drive cannot, raise AmbiguousPositionError (and keep raising it until the
        application positions the tape).
        """
        t = self._tracked
        failure = "the block number is not known"
        if t.block is not None:
            # A new I_T nexus reports the same 29/00 as a reset: ask the drive first.
            here = self._read_device_position()
            if here is not None and here.block == t.block:
                self._relocate = False
                return
            try:
                self._run(self._locate_cdb(t.block), f"LOCATE {t.block}", timeout=self.long_timeout)
            except CheckConditionError as exc:
                failure = f"LOCATE back failed: {exc}"
            else:
                self._relocate = False
                log.info(
                    "tape_located_after_reset",
                    device=getattr(self.device, "name", ""),
                    block=t.block,
                )
                return
        if t.file is not None and t.file_start:
            try:
                self._run(Rewind().to_bytes(), "REWIND", timeout=self.long_timeout)
                if t.file:
                    cdb = Space6(SpaceCode.FILEMARKS, t.file).to_bytes()
                    self._run(cdb, f"SPACE {t.file} filemarks", timeout=self.long_timeout)
            except CheckConditionError as exc:
                failure = f"REWIND and SPACE back to file {t.file} failed: {exc}"
            else:
                self._relocate = False
                log.info(
                    "tape_located_after_reset",
                    device=getattr(self.device, "name", ""),
                    file=t.file,
                )
                return
        where = "unknown" if t.block is None else f"block {t.block}"
        raise AmbiguousPositionError(
            f"the drive reported a reset and the tape may have moved; the last known "
            f"position was {where}, file {'unknown' if t.file is None else t.file}, and "
            f"it cannot be found again ({failure}); rewind() or locate() first"
        )

    def _tape(
        self,
        cdb: bytes,
        what: str,
        *,
        data_out: bytes = b"",
        data_in_len: int = 0,
        into: bytearray | memoryview | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Run a positional command: locate back first after a reset, ask the drive
        first after a medium change."""
        if self._tracked.block is None and not self._seeded:
            self._seeded = True
            self._refresh()
        for _ in range(4):
            if self._restore_modes:
                self._restore()
            if self._relocate:
                self._locate_back()
            if self._ask_position:
                self._ask_position = False
                self._refresh()
            self._positional = True
            try:
                r = self._run(
                    cdb,
                    what,
                    data_out=data_out,
                    data_in_len=data_in_len,
                    into=into,
                    timeout=timeout,
                    conditions=True,
                    repeatable=False,
                )
                self._moved = True
                return r
            except Relocate:
                continue
            except CheckConditionError as exc:
                # a failure after which the tape may have moved: ask the drive next time
                key = getattr(exc.sense, "sense_key", None)
                if key not in _NOT_RUN_KEYS or getattr(exc.sense, "deferred", False):
                    self._lose_position()
                raise
            except AmbiguityError as exc:
                # recovery could not tell whether the command ran: nobody knows the position
                self._lose_position()
                self._doubt = str(exc)
                raise
            except (PathFailureError, NoPathError):
                self._lose_position()
                raise
            finally:
                self._positional = False
        raise AmbiguousPositionError(f"{what}: the drive keeps reporting resets or medium changes")

    @staticmethod
    def _locate_cdb(block: int) -> bytes:
        if block < 1 << 32:
            return Locate10(block_address=block).to_bytes()
        return Locate16(logical_identifier=block).to_bytes()

    def _read_device_position(self) -> TapePosition | None:
        """READ POSITION: the long form, else the short form; None when the drive does
        not know (or cannot say)."""
        try:
            r = self._run(ReadPosition.long().to_bytes(), "READ POSITION (long)", data_in_len=32)
            p = PositionLong.from_bytes(r.data)
            # tgtd answers the long form with zeros: block 0 without BOP is not a position
            if p.block is not None and (p.block or p.bop):
                return TapePosition(
                    p.block, p.logical_file_identifier, p.partition, p.bop, p.eop, "device"
                )
        except (CheckConditionError, DecodeError):
            pass
        try:
            r = self._run(ReadPosition.short().to_bytes(), "READ POSITION", data_in_len=20)
            s = PositionShort.from_bytes(r.data)
        except (CheckConditionError, DecodeError):
            return None
        if s.block is None:
            return None
        file = self._tracked.file if self._tracked.block == s.block else None
        return TapePosition(s.block, file, s.partition, s.bop, s.eop, "device")

    def _device_position(self) -> TapePosition | None:
        """The drive's position, located back to the tracked one first after a reset."""
        for _ in range(4):
            if self._relocate:
                self._locate_back()
            p = self._read_device_position()
            if not self._relocate:  # no reset reported while reading
                return p
        raise AmbiguousPositionError("READ POSITION: the drive keeps reporting resets")

    def _from_device(self, p: TapePosition) -> Tracked:
        """The tracked position after the drive reported ``p`` (keeping "just after a
        filemark" when the report agrees with what was tracked)."""
        t = self._tracked
        agrees = t.file in (None, p.file) and t.block in (None, p.block)
        return Tracked(p.block, p.file, t.file_start and agrees)

    def _refresh(self) -> None:
        p = self._device_position()
        if p is not None:
            self._tracked = self._from_device(p)
