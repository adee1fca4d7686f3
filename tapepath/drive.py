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

The drive is built in layers, one responsibility each: :mod:`tapepath.tape_modes`
(block size and compression, set again after a reset), :mod:`tapepath.tape_position`
(:class:`TapePosition`, the tracked position, positional commands and finding the tape
again after a reset), :mod:`tapepath.tape_reading` (the READ path) and this module
(writing, spacing, loading, reservations, TapeAlert).
"""

from __future__ import annotations

from typing import Literal

import attrs
import structlog

from tapepath.api import DEFAULT_TIMEOUT, error_for
from tapepath.errors import (
    CheckConditionError,
    DecodeError,
    FilemarkEncountered,
    MediumNotPresentError,
    NotReadyError,
    TapepathError,
)
from tapepath.scsi.changer import PreventAllowMediumRemoval
from tapepath.scsi.classify import UnitAttention, classify_response
from tapepath.scsi.inquiry import Inquiry
from tapepath.scsi.log import LogSense, TapeAlert
from tapepath.scsi.reservations import (
    PersistentReserveOut,
    PrOutAction,
    PrOutParameters,
    PrType,
)
from tapepath.scsi.sense import SenseKey
from tapepath.scsi.tape import (
    LoadUnload,
    Rewind,
    Space6,
    Space16,
    SpaceCode,
    Write6,
    WriteFilemarks6,
)
from tapepath.scsi.tape_pages import DataCompressionPage
from tapepath.scsi.vpd import UnitSerialNumber
from tapepath.tape_position import Relocate, TapePosition, Tracked
from tapepath.tape_reading import MAX_TRANSFER, RecordReading
from tapepath.transport.base import Transport

__all__ = ["SpaceUnit", "TapeDrive", "TapePosition"]

log = structlog.get_logger("tapepath.drive")

SpaceUnit = Literal["blocks", "filemarks", "eod"]
_SPACE_CODES: dict[str, SpaceCode] = {
    "blocks": SpaceCode.BLOCKS,
    "filemarks": SpaceCode.FILEMARKS,
    "eod": SpaceCode.END_OF_DATA,
}


class TapeDrive(RecordReading):
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
        self._tracked = Tracked()
        self._relocate = False
        self._seeded = False
        self._ask_position = False
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
                raise Relocate
        elif kind is UnitAttention.MEDIUM_CHANGED:
            self._medium_may_have_changed()
        elif kind is UnitAttention.MODE_CHANGED:
            self._block_size = None

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

    @property
    def block_size(self) -> int:
        """The block size the drive uses: 0 for variable blocks (read with MODE SENSE
        once, then remembered until a reset or a mode change)."""
        return self._known_block_size()

    def set_block_size(self, size: int) -> None:
        """Set fixed blocks of ``size`` bytes, or variable blocks (0).

        The setting is remembered and set again after the drive reports a reset.

        Raises:
            ValueError: the size does not fit in 24 bits.
            CheckConditionError: the drive refuses it.
        """
        if not 0 <= size <= MAX_TRANSFER:
            raise ValueError(f"block size must be 0..{MAX_TRANSFER}, not {size}")
        with self._lock:
            self._apply_block_size(size)
            self._wanted_block_size = size

    def set_compression(self, on: bool) -> None:
        """Turn hardware compression on or off (data compression page 0Fh, DCE).

        The setting is remembered and set again after the drive reports a reset.

        Raises:
            CheckConditionError: the drive has no compression page or refuses it.
        """
        with self._lock:
            self._apply_compression(bool(on))
            self._wanted_compression = bool(on)

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
                if blocks > MAX_TRANSFER:
                    raise ValueError(f"write: {blocks} blocks is more than one command takes")
                cmd = Write6(blocks, True, size)
            else:
                if len(payload) > MAX_TRANSFER:
                    raise ValueError(f"write: a record is at most {MAX_TRANSFER} bytes")
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

    def write_filemarks(self, count: int = 1) -> None:
        """Write ``count`` filemarks (0 flushes the drive's buffer to the tape).

        Raises:
            ValueError: a negative count or more than 24 bits.
            EndOfMediumError: the tape is full.
        """
        if not 0 <= count <= MAX_TRANSFER:
            raise ValueError(f"write_filemarks: count must be 0..{MAX_TRANSFER}")
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
                    self._tracked = Tracked(
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
            self._tracked = Tracked(block, 0 if block == 0 else None, block == 0)
            self._refresh()

    def rewind(self) -> None:
        """Rewind to the beginning of the tape."""
        with self._lock:
            self._clear_pending()
            self._run(Rewind().to_bytes(), "REWIND", timeout=self.long_timeout)
            self._known_again()
            self._tracked = Tracked(0, 0, True)

    def load(self) -> None:
        """Load the cartridge in the drive and position it at the beginning."""
        with self._lock:
            self._clear_pending()
            self._run(LoadUnload(load=True).to_bytes(), "LOAD", timeout=self.long_timeout)
            self._known_again()
            self._tracked = Tracked(0, 0, True)

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
