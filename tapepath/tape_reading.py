"""Reading records: READ in fixed and variable mode, and what its sense data means.

:class:`RecordReading` is the part of :class:`~tapepath.drive.TapeDrive` behind
:meth:`~tapepath.drive.TapeDrive.read` and :meth:`~tapepath.drive.TapeDrive.readinto`:
one READ, the filemark, end-of-data and incorrect-length conditions turned into results
or typed errors, and a record that arrived cut (tgtd) read again whole.
"""

from __future__ import annotations

import structlog

from tapepath.api import error_for
from tapepath.errors import IncorrectLengthError, TapepathError
from tapepath.scsi.classify import classify_response
from tapepath.scsi.sense import Sense, SenseKey
from tapepath.scsi.tape import Read6, Space6, SpaceCode
from tapepath.tape_position import PositionKeeping
from tapepath.transport.base import Response

__all__ = ["MAX_TRANSFER", "RecordReading"]

log = structlog.get_logger("tapepath.drive")

#: The most a READ or WRITE(6) moves: bytes, or blocks in fixed mode (24 bits).
MAX_TRANSFER = 0xFFFFFF


class RecordReading(PositionKeeping):
    """The READ path of a tape drive (a base of :class:`~tapepath.drive.TapeDrive`)."""

    @staticmethod
    def _condition(r: Response) -> Sense:
        sense = r.sense_data
        if sense is None:
            raise error_for(classify_response(r), "tape command")
        return sense

    def _read_size(self, n: int) -> int:
        if not 0 < n <= MAX_TRANSFER:
            raise ValueError(f"read: size must be 1..{MAX_TRANSFER}, not {n}")
        size = self._known_block_size()
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
        size = self._known_block_size()
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
