"""A tape drive behind all its ports: write, read, position, settings, reservations.

:class:`TapeDrive` is what :func:`tapepath.open_drive` returns. It tracks the logical
position (block and file number) after every command it completes, so
:meth:`TapeDrive.position` can answer where the drive cannot (tgtd reports the position
as unknown), and a drive reset seen as a unit attention is followed by a LOCATE back to
the tracked block before the next positional command, never by a write at the
beginning of the tape.

Tape events are typed: a READ that meets a filemark returns ``b""`` (0 for
:meth:`~TapeDrive.readinto`) with the tape positioned after the filemark, as a file
read returns at its end; the end of data raises :class:`~tapepath.errors.EndOfDataError`;
a SPACE over blocks that meets a filemark raises
:class:`~tapepath.errors.FilemarkEncountered`.
"""

from __future__ import annotations

from typing import Literal

import attrs
import structlog
from attrs import field, frozen
from attrs.validators import in_, optional

from tapepath.api import DEFAULT_TIMEOUT, DeviceHandle, error_for
from tapepath.errors import (
    AmbiguityError,
    AmbiguousPositionError,
    CheckConditionError,
    DecodeError,
    FilemarkEncountered,
    IncorrectLengthError,
    MediumNotPresentError,
    NoPathError,
    NotReadyError,
    PathFailureError,
    TapepathError,
)
from tapepath.scsi._wire import flag_field, uint_field
from tapepath.scsi.changer import PreventAllowMediumRemoval
from tapepath.scsi.classify import UnitAttention, classify_response
from tapepath.scsi.inquiry import Inquiry
from tapepath.scsi.log import LogSense, TapeAlert
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6, ModeSense6
from tapepath.scsi.position import PositionLong, PositionShort, ReadPosition
from tapepath.scsi.reservations import (
    PersistentReserveOut,
    PrOutAction,
    PrOutParameters,
    PrType,
)
from tapepath.scsi.sense import Sense, SenseKey
from tapepath.scsi.tape import (
    LoadUnload,
    Locate10,
    Locate16,
    Read6,
    Rewind,
    Space6,
    Space16,
    SpaceCode,
    Write6,
    WriteFilemarks6,
)
from tapepath.scsi.tape_pages import DataCompressionPage, with_block_length
from tapepath.scsi.vpd import UnitSerialNumber
from tapepath.transport.base import Response, Transport

__all__ = ["SpaceUnit", "TapeDrive", "TapePosition"]

log = structlog.get_logger("tapepath.drive")

SpaceUnit = Literal["blocks", "filemarks", "eod"]
_SPACE_CODES: dict[str, SpaceCode] = {
    "blocks": SpaceCode.BLOCKS,
    "filemarks": SpaceCode.FILEMARKS,
    "eod": SpaceCode.END_OF_DATA,
}
_MAX_TRANSFER = 0xFFFFFF
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
class _Tracked:
    block: int | None = None
    file: int | None = None
    file_start: bool = False
    """Just after a filemark (or at the beginning): REWIND and SPACE ``file`` filemarks
    find the place again even when ``block`` is unknown."""

    def moved(self, blocks: int, files: int = 0) -> _Tracked:
        return _Tracked(
            None if self.block is None else max(self.block + blocks, 0),
            None if self.file is None else max(self.file + files, 0),
            files > 0 or (blocks == 0 and self.file_start),
        )


class _Relocate(Exception):
    """Internal: a reset was reported before a positional command; restore the mode
    settings and locate back first."""


class TapeDrive(DeviceHandle):
    """A tape drive behind all its ports.

    Args:
        device: the drive: a :class:`~tapepath.multipath.MultipathDevice` (as
            :func:`tapepath.open_drive` makes it) or any transport.
        timeout: seconds for reads, writes and short commands.
        long_timeout: seconds for REWIND, SPACE, LOCATE and LOAD/UNLOAD.
        reservation_key: the application's persistent reservation key (non-zero).
    """

    def __init__(
        self,
        device: Transport,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        long_timeout: float = 3600.0,
        reservation_key: int | None = None,
    ) -> None:
        super().__init__(device, timeout=timeout)
        if long_timeout <= 0:
            raise ValueError(f"long_timeout must be positive, not {long_timeout}")
        if reservation_key is not None and not 0 < reservation_key < 1 << 64:
            raise ValueError("reservation_key must be a non-zero 64-bit number")
        self.long_timeout = long_timeout
        self.reservation_key = reservation_key
        self._block_size: int | None = None
        self._tracked = _Tracked()
        self._relocate = False
        self._seeded = False
        self._positional = False
        self._doubt: str | None = None
        self._pending: TapepathError | None = None
        self._pending_filemark = False
        self._reservation: tuple[int, int] | None = None
        self._serial: str | None = None
        self._moved = False
        self._wanted_block_size: int | None = None
        self._wanted_compression: bool | None = None
        self._restore_modes = False
        self.early_warning = False
        """True once a write reported the early-warning zone (end of tape is near)."""

    def __repr__(self) -> str:
        return f"TapeDrive({getattr(self.device, 'name', self.device.url)!r})"

    # -- unit attentions and positional commands -----------------------------------------

    def _on_unit_attention(self, kind: UnitAttention) -> None:
        if kind is UnitAttention.POWER_ON_RESET:
            self._block_size = None
            if self._wanted_block_size is not None or self._wanted_compression is not None:
                self._restore_modes = True
            t = self._tracked
            if t.block or (t.block is None and self._moved):
                self._relocate = True
            if self._positional and (self._relocate or self._restore_modes):
                raise _Relocate
        elif kind is UnitAttention.MEDIUM_CHANGED:
            self._tracked = _Tracked(0, 0, True)
            self._known_again()
            self._clear_pending()
        elif kind is UnitAttention.MODE_CHANGED:
            self._block_size = None

    def _known_again(self) -> None:
        """The position is set by the application (rewind, locate, load): no doubt left."""
        self._relocate = False
        self._doubt = None

    def _check_doubt(self, what: str) -> None:
        if self._doubt is not None:
            raise AmbiguousPositionError(
                f"{what}: not sent: the tape position is in doubt ({self._doubt}); rewind(), "
                "locate(), or a position() the drive can answer, clears it"
            )

    def _lose_position(self) -> None:
        """Forget the tracked position; the next positional command asks the drive."""
        self._tracked = _Tracked()
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

    def _restore(self) -> None:
        """After a reported reset, set the block size and compression the application
        chose again (a reset returns them to the drive's defaults)."""
        self._restore_modes = False
        if self._wanted_block_size is not None:
            self._apply_block_size(self._wanted_block_size)
        if self._wanted_compression is not None:
            self._apply_compression(self._wanted_compression)
        log.info(
            "tape_modes_restored",
            device=getattr(self.device, "name", ""),
            block_size=self._wanted_block_size,
            compression=self._wanted_compression,
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
        """Run a positional command: locate back first after a reset."""
        if self._tracked.block is None and not self._seeded:
            self._seeded = True
            self._refresh()
        for _ in range(4):
            if self._restore_modes:
                self._restore()
            if self._relocate:
                self._locate_back()
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
            except _Relocate:
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
        raise AmbiguousPositionError(f"{what}: the drive keeps reporting resets")

    @staticmethod
    def _locate_cdb(block: int) -> bytes:
        if block < 1 << 32:
            return Locate10(block_address=block).to_bytes()
        return Locate16(logical_identifier=block).to_bytes()

    @property
    def serial(self) -> str | None:
        """The drive's serial number (INQUIRY VPD 80h), read once; None when it has none.

        Pass it to :meth:`tapepath.Library.drive_for` to find the drive's element.
        """
        with self._lock:
            if self._serial is None:
                try:
                    r = self._run(
                        Inquiry(evpd=True, page_code=0x80, allocation_length=255).to_bytes(),
                        "INQUIRY VPD 80h",
                        data_in_len=255,
                    )
                    self._serial = UnitSerialNumber.from_bytes(r.data).serial_number.strip()
                except (CheckConditionError, DecodeError):
                    self._serial = ""
            return self._serial or None

    # -- settings ------------------------------------------------------------------------

    def _mode_sense(self, page: int) -> ModeParameters:
        r = self._run(
            ModeSense6(page_code=page, allocation_length=255).to_bytes(),
            f"MODE SENSE page {page:02X}h",
            data_in_len=255,
        )
        return ModeParameters.from_bytes(r.data)

    @property
    def block_size(self) -> int:
        """The block size the drive uses: 0 for variable blocks (read with MODE SENSE
        once, then remembered until a reset or a mode change)."""
        with self._lock:
            if self._restore_modes:
                self._restore()
            if self._block_size is None:
                params = self._mode_sense(0x0F)
                descs = params.block_descriptors
                self._block_size = descs[0].block_length if descs else 0
            return self._block_size

    def set_block_size(self, size: int) -> None:
        """Set fixed blocks of ``size`` bytes, or variable blocks (0).

        The setting is remembered and set again after the drive reports a reset.

        Raises:
            ValueError: the size does not fit in 24 bits.
            CheckConditionError: the drive refuses it.
        """
        if not 0 <= size <= _MAX_TRANSFER:
            raise ValueError(f"block size must be 0..{_MAX_TRANSFER}, not {size}")
        with self._lock:
            self._apply_block_size(size)
            self._wanted_block_size = size

    def _apply_block_size(self, size: int) -> None:
        params = self._mode_sense(0x0F)
        descs = params.block_descriptors
        desc = with_block_length(descs[0], size) if descs else BlockDescriptor(0, 0, size)
        new = ModeParameters(
            device_specific_parameter=params.device_specific_parameter & 0x70,
            block_descriptors=(desc,),
        )
        cmd, data = ModeSelect6.for_parameters(new)
        self._run(cmd.to_bytes(), f"MODE SELECT block size {size}", data_out=data)
        self._block_size = size
        log.info("tape_block_size_set", device=getattr(self.device, "name", ""), size=size)

    def set_compression(self, on: bool) -> None:
        """Turn hardware compression on or off (data compression page 0Fh, DCE).

        The setting is remembered and set again after the drive reports a reset.

        Raises:
            CheckConditionError: the drive has no compression page or refuses it.
        """
        with self._lock:
            self._apply_compression(bool(on))
            self._wanted_compression = bool(on)

    def _apply_compression(self, on: bool) -> None:
        params = self._mode_sense(0x0F)
        page = params.page(0x0F)
        if page is None:
            raise CheckConditionError("set_compression: the drive has no compression page")
        current = DataCompressionPage.from_mode_page(page)
        wanted = attrs.evolve(current, dce=on, ps=False)
        new = ModeParameters(
            device_specific_parameter=params.device_specific_parameter & 0x70,
            pages=(wanted.to_mode_page(),),
        )
        cmd, data = ModeSelect6.for_parameters(new)
        self._run(cmd.to_bytes(), f"MODE SELECT compression {'on' if on else 'off'}", data_out=data)
        log.info("tape_compression_set", device=getattr(self.device, "name", ""), on=on)

    @property
    def compression(self) -> bool:
        """Whether hardware compression is on (DCE of page 0Fh, read now)."""
        with self._lock:
            page = self._mode_sense(0x0F).page(0x0F)
            return page is not None and DataCompressionPage.from_mode_page(page).dce

    # -- data --------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data``: one record in variable mode, whole blocks in fixed mode.

        Returns:
            The number of bytes written (all of them).

        Raises:
            ValueError: empty data, more than 16 MiB - 1, or (fixed mode) not a whole
                number of blocks.
            EndOfMediumError: the tape is full (VOLUME OVERFLOW); ``residual`` says
                what was not written.
            WriteProtectedError: the cartridge is write protected.
        """
        payload = data if isinstance(data, bytes) else bytes(data)
        with self._lock:
            size = self.block_size
            if not payload:
                raise ValueError("write: no data")
            if size:
                if len(payload) % size:
                    raise ValueError(
                        f"write: {len(payload)} bytes are not whole {size}-byte blocks"
                    )
                blocks = len(payload) // size
                if blocks > _MAX_TRANSFER:
                    raise ValueError(f"write: {blocks} blocks is more than one command takes")
                cmd = Write6(blocks, True, size)
            else:
                if len(payload) > _MAX_TRANSFER:
                    raise ValueError(f"write: a record is at most {_MAX_TRANSFER} bytes")
                blocks = 1
                cmd = Write6(len(payload))
            self._check_doubt(f"WRITE {len(payload)} bytes")
            self._clear_pending()
            r = self._tape(cmd.to_bytes(), f"WRITE {len(payload)} bytes", data_out=payload)
            if not r.ok:
                sense = self._condition(r)
                if not (
                    sense.eom and sense.sense_key in (SenseKey.NO_SENSE, SenseKey.RECOVERED_ERROR)
                ):
                    self._lose_position()
                    raise error_for(classify_response(r), f"WRITE {len(payload)} bytes")
                self._warn()
            self._tracked = self._tracked.moved(blocks)
            return len(payload)

    def _warn(self) -> None:
        if not self.early_warning:
            log.warning("tape_early_warning", device=getattr(self.device, "name", ""))
        self.early_warning = True

    @staticmethod
    def _condition(r: Response) -> Sense:
        sense = r.sense_data
        if sense is None:
            raise error_for(classify_response(r), "tape command")
        return sense

    def write_filemarks(self, count: int = 1) -> None:
        """Write ``count`` filemarks (0 flushes the drive's buffer to the tape).

        Raises:
            ValueError: a negative count or more than 24 bits.
            EndOfMediumError: the tape is full.
        """
        if not 0 <= count <= _MAX_TRANSFER:
            raise ValueError(f"write_filemarks: count must be 0..{_MAX_TRANSFER}")
        with self._lock:
            what = f"WRITE FILEMARKS {count}"
            self._check_doubt(what)
            self._clear_pending()
            r = self._tape(WriteFilemarks6(count).to_bytes(), what, timeout=self.long_timeout)
            if not r.ok:
                sense = self._condition(r)
                if not (
                    sense.eom and sense.sense_key in (SenseKey.NO_SENSE, SenseKey.RECOVERED_ERROR)
                ):
                    self._lose_position()
                    raise error_for(classify_response(r), what)
                self._warn()
            self._tracked = self._tracked.moved(count, count)

    def read(self, n: int) -> bytes:
        """Read one record of at most ``n`` bytes (variable mode), or ``n`` bytes of
        whole blocks (fixed mode).

        Returns:
            The data; ``b""`` when a filemark was read (the tape is then after it). In
            fixed mode, blocks read before a filemark are returned first and the next
            call returns ``b""``.

        Raises:
            ValueError: ``n`` out of range, or not whole blocks in fixed mode.
            EndOfDataError: nothing more is recorded.
            IncorrectLengthError: (variable mode) the record is longer than ``n``; the
                tape is past it and the error holds the first ``n`` bytes.
        """
        with self._lock:
            got, data = self._read(self._read_size(n), None)
            return data if len(data) == got else data[:got]

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Like :meth:`read`, into ``buf`` (its length is the most to read).

        Returns:
            The number of bytes read; 0 at a filemark.
        """
        view = memoryview(buf).cast("B")
        with self._lock:
            self._read_size(len(view))
            return self._read(len(view), view)[0]

    def _read_size(self, n: int) -> int:
        if not 0 < n <= _MAX_TRANSFER:
            raise ValueError(f"read: size must be 1..{_MAX_TRANSFER}, not {n}")
        size = self.block_size
        if size and n % size:
            raise ValueError(f"read: {n} bytes are not whole {size}-byte blocks")
        return n

    def _read(self, n: int, view: memoryview | None) -> tuple[int, bytes]:
        """One READ of ``n`` bytes into ``view``, or into a new bytes object (None).

        Returns:
            The number of bytes read and, without ``view``, the bytes (perhaps longer).
        """
        if self._pending_filemark:
            self._pending_filemark = False
            return 0, b""
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error
        size = self.block_size
        count = n // size if size else n
        cmd = Read6(count, fixed=bool(size), block_length=size).to_bytes()
        what = f"READ {n} bytes"
        if view is None:
            r = self._tape(cmd, what, data_in_len=n)
            data, arrived = r.data, len(r.data)
        else:
            r = self._tape(cmd, what, into=view)
            data, arrived = b"", r.transferred
        if r.ok:
            self._tracked = self._tracked.moved(count if size else 1)
            return (n if size else arrived), data
        sense = self._condition(r)
        residual = sense.residual or 0
        if size:
            got = (
                max(count - residual, 0)
                if (
                    sense.filemark
                    or sense.ili
                    or sense.eom
                    or sense.sense_key == SenseKey.BLANK_CHECK
                )
                else 0
            )
            self._tracked = self._tracked.moved(got)
            nbytes = got * size
            if sense.filemark:
                self._tracked = self._tracked.moved(1, 1)
                self._pending_filemark = nbytes > 0
                return nbytes, data
            error = error_for(classify_response(r), what)
            if nbytes:
                self._pending = error
                return nbytes, data
            raise error
        if sense.filemark:
            self._tracked = self._tracked.moved(1, 1)
            return 0, b""
        if sense.ili and sense.sense_key == SenseKey.NO_SENSE:
            self._tracked = self._tracked.moved(1)
            if residual >= 0:
                record = n - residual
                if arrived < record:
                    return self._reread(record, arrived, view, what, sense)
                return record, data
            raise IncorrectLengthError(
                f"{what}: the record is {n - residual} bytes, longer than the buffer",
                sense,
                residual=residual,
                data=bytes(data[:n] if view is None else view[:n]),
                record_length=n - residual,
            )
        raise error_for(classify_response(r), what)

    def _reread(
        self, record: int, arrived: int, view: memoryview | None, what: str, sense: Sense
    ) -> tuple[int, bytes]:
        """A short record came back cut: fewer bytes than the record the sense implies
        (tgtd swaps its residual and data length). Space back over it and read it again
        with the allocation equal to its length; never return the cut bytes.

        Raises:
            IncorrectLengthError: the record could not be read whole; ``record_length``
                names its length and ``data`` is empty. The tape is after the record
                when the SPACE back failed, else wherever the failed re-read left it.
        """
        log.warning(
            "tape_record_cut",
            device=getattr(self.device, "name", ""),
            record_length=record,
            received=arrived,
        )

        def cut(reason: str) -> IncorrectLengthError:
            return IncorrectLengthError(
                f"{what}: the record is {record} bytes but only {arrived} arrived, and {reason}",
                sense,
                residual=sense.residual,
                record_length=record,
            )

        try:
            back = self._tape(
                Space6(SpaceCode.BLOCKS, -1).to_bytes(),
                "SPACE -1 blocks (re-read a cut record)",
                timeout=self.long_timeout,
            )
        except TapepathError as exc:
            raise cut(f"spacing back over it failed: {exc}") from exc
        if not back.ok:
            self._lose_position()
            raise cut(f"spacing back over it failed: {self._condition(back)}")
        self._tracked = self._tracked.moved(-1)
        again = f"READ {record} bytes (re-read)"
        try:
            r = self._tape(Read6(record).to_bytes(), again, data_in_len=record)
        except TapepathError as exc:
            raise cut(f"the re-read failed: {exc}") from exc
        if not r.ok or len(r.data) != record:
            self._lose_position()
            raise cut(f"the re-read gave {len(r.data)} bytes")
        self._tracked = self._tracked.moved(1)
        if view is not None:
            view[:record] = r.data
            return record, b""
        return record, bytes(r.data)

    # -- positioning ---------------------------------------------------------------------

    def space(self, count: int, unit: SpaceUnit = "blocks") -> None:
        """Space over ``count`` blocks or filemarks (negative: backwards), or to the end
        of data (``unit="eod"``, count ignored).

        Raises:
            ValueError: an unknown unit.
            FilemarkEncountered: spacing over blocks met a filemark (the tape is past
                it); ``residual`` counts the blocks not spaced.
            EndOfDataError: the end of data came first.
            BeginningOfMediumError: spacing backwards reached the beginning.
        """
        code = _SPACE_CODES.get(unit)
        if code is None:
            raise ValueError(f"space: unit must be one of {sorted(_SPACE_CODES)}, not {unit!r}")
        n = 0 if code is SpaceCode.END_OF_DATA else count
        if -(1 << 23) <= n < 1 << 23:
            cdb = Space6(code, n).to_bytes()
        else:
            cdb = Space16(code, n).to_bytes()
        what = f"SPACE {n} {unit}" if code is not SpaceCode.END_OF_DATA else "SPACE to end of data"
        with self._lock:
            self._clear_pending()
            before = self._tracked
            r = self._tape(cdb, what, timeout=self.long_timeout)
            if r.ok:
                if code is SpaceCode.BLOCKS:
                    self._tracked = before.moved(n)
                elif code is SpaceCode.FILEMARKS:
                    self._tracked = _Tracked(
                        None, None if before.file is None else before.file + n, n > 0
                    )
                else:
                    self._lose_position()
                self._refresh()
                return
            sense = self._condition(r)
            self._lose_position()
            self._refresh()
            if sense.filemark and code is SpaceCode.BLOCKS:
                raise FilemarkEncountered(f"{what}: {sense}", sense, residual=sense.residual)
            raise error_for(classify_response(r), what)

    def locate(self, block: int) -> None:
        """Go to logical object ``block`` (LOCATE; 0 is the beginning of the tape).

        Raises:
            ValueError: a negative block.
            CheckConditionError: the drive cannot (tgtd has no LOCATE).
        """
        if not 0 <= block < 1 << 64:
            raise ValueError(f"locate: block must be 0..2**64-1, not {block}")
        with self._lock:
            self._clear_pending()
            what = f"LOCATE {block}"
            self._run(self._locate_cdb(block), what, timeout=self.long_timeout)
            self._known_again()
            self._tracked = _Tracked(block, 0 if block == 0 else None, block == 0)
            self._refresh()

    def rewind(self) -> None:
        """Rewind to the beginning of the tape."""
        with self._lock:
            self._clear_pending()
            self._run(Rewind().to_bytes(), "REWIND", timeout=self.long_timeout)
            self._known_again()
            self._tracked = _Tracked(0, 0, True)

    def load(self) -> None:
        """Load the cartridge in the drive and position it at the beginning."""
        with self._lock:
            self._clear_pending()
            self._run(LoadUnload(load=True).to_bytes(), "LOAD", timeout=self.long_timeout)
            self._known_again()
            self._tracked = _Tracked(0, 0, True)

    def unload(self) -> None:
        """Rewind and unload the cartridge (the robot can then take it out)."""
        with self._lock:
            self._clear_pending()
            self._run(LoadUnload(load=False).to_bytes(), "UNLOAD", timeout=self.long_timeout)
            self._known_again()
            self._lose_position()
            self._moved = False

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Wait until the drive is ready (TEST UNIT READY), as after the robot loads it.

        Args:
            timeout: the longest wait in seconds (Bacula waits up to 300).

        Raises:
            MediumNotPresentError: still no cartridge when the time is up.
            NotReadyError: still not ready when the time is up.
        """
        deadline = self._clock() + timeout
        delay = 0.05
        while True:
            try:
                with self._lock:
                    self._run(
                        bytes(6), "TEST UNIT READY", timeout=max(min(self.timeout, timeout), 0.001)
                    )
                return
            except (MediumNotPresentError, NotReadyError):
                left = deadline - self._clock()
                if left <= 0:
                    raise
                self._sleep(min(delay, left))
                delay = min(delay * 2, 2.0)

    def prevent_removal(self, prevent: bool = True) -> None:
        """Lock the cartridge in the drive (PREVENT MEDIUM REMOVAL), or allow removal.

        While it is prevented the robot cannot take the cartridge out (53/02); the
        prevention belongs to the path it was sent on, and recovery sends it again on
        the new path after a failover.
        """
        with self._lock:
            what = "PREVENT MEDIUM REMOVAL" if prevent else "ALLOW MEDIUM REMOVAL"
            self._run(PreventAllowMediumRemoval(int(bool(prevent))).to_bytes(), what)

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

    def _from_device(self, p: TapePosition) -> _Tracked:
        """The tracked position after the drive reported ``p`` (keeping "just after a
        filemark" when the report agrees with what was tracked)."""
        t = self._tracked
        agrees = t.file in (None, p.file) and t.block in (None, p.block)
        return _Tracked(p.block, p.file, t.file_start and agrees)

    def _refresh(self) -> None:
        p = self._device_position()
        if p is not None:
            self._tracked = self._from_device(p)

    def position(self) -> TapePosition:
        """Where the tape is: READ POSITION (long form for the file number), or the
        tracked position when the drive reports it as unknown.

        Returns:
            The position; ``source`` says whose account it is. ``block`` and ``file``
            are None when nobody knows (after a failed write, before any positioning on
            a drive that cannot tell).
        """
        with self._lock:
            p = self._device_position()
            if p is not None:
                self._doubt = None
                if p.file is None and self._tracked.block == p.block:
                    p = attrs.evolve(p, file=self._tracked.file)
                self._tracked = self._from_device(p)
                return p
            t = self._tracked
            return TapePosition(t.block, t.file, 0, t.block == 0, False, "tracked")

    # -- reservations and alerts ---------------------------------------------------------

    def reserve(
        self, key: int | None = None, *, exclusive: bool = True, all_ports: bool = False
    ) -> None:
        """Take a persistent reservation: register ``key``, then reserve.

        Args:
            key: the reservation key (default: the drive's ``reservation_key``).
            exclusive: EXCLUSIVE ACCESS (True) or WRITE EXCLUSIVE (False).
            all_ports: register through every target port at once (ALL_TG_PT).

        Raises:
            ValueError: no key given and none configured.
            ReservationConflictError: another initiator holds a reservation.
        """
        k = key if key is not None else self.reservation_key
        if k is None or not 0 < k < 1 << 64:
            raise ValueError("reserve: give a non-zero 64-bit key (or open with reservation_key)")
        pr_type = PrType.EXCLUSIVE_ACCESS if exclusive else PrType.WRITE_EXCLUSIVE
        with self._lock:
            self._pr_out(
                PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY,
                PrOutParameters(0, k, all_tg_pt=all_ports),
                "PERSISTENT RESERVE OUT register",
            )
            self._pr_out(
                PrOutAction.RESERVE,
                PrOutParameters(k),
                "PERSISTENT RESERVE OUT reserve",
                pr_type=pr_type,
            )
            self.reservation_key = k
            self._reservation = (k, int(pr_type))
            log.info("tape_reserved", device=getattr(self.device, "name", ""), type=pr_type.name)

    def release(self) -> None:
        """Release the reservation :meth:`reserve` took and remove the registration."""
        with self._lock:
            if self._reservation is None:
                return
            key, pr_type = self._reservation
            self._pr_out(
                PrOutAction.RELEASE,
                PrOutParameters(key),
                "PERSISTENT RESERVE OUT release",
                pr_type=pr_type,
            )
            self._pr_out(
                PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY,
                PrOutParameters(0, 0),
                "PERSISTENT RESERVE OUT unregister",
            )
            self._reservation = None
            log.info("tape_released", device=getattr(self.device, "name", ""))

    def _pr_out(
        self, action: PrOutAction, params: PrOutParameters, what: str, *, pr_type: int = 0
    ) -> None:
        cmd, data = PersistentReserveOut.for_parameters(action, params, pr_type=pr_type)
        self._run(cmd.to_bytes(), what, data_out=data)

    def tape_alerts(self) -> TapeAlert:
        """Read (and so clear) the TapeAlert flags (LOG SENSE page 2Eh).

        Returns:
            The flags: ``.flags`` (numbers), ``.names`` (SSC names), ``17 in alerts``.
        """
        with self._lock:
            r = self._run(
                LogSense(page_code=TapeAlert.PAGE_CODE, allocation_length=0x400).to_bytes(),
                "LOG SENSE TapeAlert",
                data_in_len=0x400,
            )
            return TapeAlert.from_bytes(r.data)
