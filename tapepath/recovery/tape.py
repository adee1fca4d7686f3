"""TapeRecovery: synchronise a tape drive by its logical position.

The position before the failed command is the one tracked from the command stream
(:class:`~tapepath.recovery.tracking.TapeState`). On the new path recovery reads the
position (long form when the drive has it, else short) and compares:

- at the position before the command: the command did not run; resend it;
- at the position the command leaves (WRITE: +1 record in variable mode or +N blocks
  in fixed mode; WRITE FILEMARKS: +N; SPACE blocks: +count; SPACE filemarks: the file
  number +count; LOCATE/REWIND: the target): it ran; complete it with the response
  the caller would have had, without resending. A READ that ran lost its data: LOCATE
  back and resend it;
- LOCATE, REWIND and SPACE to end of data are absolute: resend them from anywhere;
- LOAD is resent; an UNLOAD is complete when TEST UNIT READY reports no medium (3A),
  resent when it answers GOOD;
- anywhere else, or a position the drive reports as unknown (BYCU, LOCU, LOLU, PERR,
  LONU, MPU; or block 0 without BOP, as tgtd's all-zero long form), or no position
  known before the command:
  :class:`~tapepath.recovery.errors.PositionAmbiguousError`, nothing resent.

After a reset (29/xx or 28/xx on the new nexus, and the tape at BOP where the command
does not explain it; a nexus never used before reports 29/00 too, so the unit attention
alone proves nothing), recovery LOCATEs back to the tracked position first. A WRITE
that may have run before the reset is then checked by reading the record at that
position (in fixed mode, its blocks): the same bytes prove it is there (complete), end
of data proves it is not (resend), anything else is ambiguous. A WRITE FILEMARKS of one
filemark is checked the same way.

A power on or reset seen anywhere else (the notify of a recovery of a command that
does not move the tape, a path switch, or any command's answer on the path in use) is
settled before the next positional command (READ, WRITE, WRITE FILEMARKS, SPACE,
ERASE, VERIFY) by :meth:`TapeRecovery.check_command`: LOCATE back to the tracked
position when it was known (after READ POSITION shows the tape is not already there);
when only the way there is known, SPACE to end of data (the tape was at end of data:
after a write or SPACE to end of data) or REWIND and SPACE over filemarks (it was at
the start of a file); else, unless the drive reports a position away from BOP (then it
was not rewound), :class:`~tapepath.recovery.errors.PositionAmbiguousError`, raised at
every positional command until a REWIND, LOCATE or LOAD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from tapepath.errors import DecodeError
from tapepath.recovery.driver import RecoveryDriver, Run, command_name
from tapepath.recovery.errors import PositionAmbiguousError
from tapepath.recovery.handlers import send_past_ua
from tapepath.recovery.machine import Action, Event
from tapepath.recovery.tracking import TapeState, TrackedPosition, position_known
from tapepath.scsi.classify import UnitAttention
from tapepath.scsi.position import PositionLong, ReadPosition, parse_position
from tapepath.scsi.tape import Locate10, Locate16, Read6, Rewind, Space6, SpaceCode
from tapepath.transport.base import Response

if TYPE_CHECKING:
    from tapepath.multipath.device import MultipathDevice
    from tapepath.multipath.path import Path

__all__ = ["TapeRecovery"]

log = structlog.get_logger("tapepath.recovery")

_WRITE, _READ, _WFM, _SPACE6, _SPACE16 = 0x0A, 0x08, 0x10, 0x11, 0x91
_REWIND, _LOCATE10, _LOCATE16, _LOAD_UNLOAD = 0x01, 0x2B, 0x92, 0x1B
_RELATIVE = frozenset({_WRITE, _READ, _WFM, _SPACE6, _SPACE16})
_ABSOLUTE = frozenset({_REWIND, _LOCATE10, _LOCATE16})
_WRITES = frozenset({_WRITE, _WFM})
_SETS_POSITION = frozenset({_REWIND, _LOCATE10, _LOCATE16, _LOAD_UNLOAD})
_POSITIONAL = frozenset(
    {
        _READ,
        _WRITE,
        _WFM,
        _SPACE6,
        _SPACE16,
        0x13,  # VERIFY(6)
        0x19,  # ERASE(6)
        0x80,  # WRITE FILEMARKS(16)
        0x88,  # READ(16)
        0x8A,  # WRITE(16)
        0x8F,  # VERIFY(16)
    }
)
"""Commands that act at the current position (after a reset: not before it is settled)."""


class TapeRecovery(RecoveryDriver):
    """The recovery hook for a tape drive: pass it as
    ``MultipathDevice(paths, recovery=TapeRecovery())``.

    Args:
        position: the position to start from when the application knows it (default:
            unknown until a REWIND, LOAD, LOCATE or READ POSITION completes).
        **kwargs: see :class:`~tapepath.recovery.driver.RecoveryDriver`.

    Attributes:
        state: the tracked settings and position.
    """

    state: TapeState

    def __init__(self, *, position: TrackedPosition | None = None, **kwargs: Any) -> None:
        self.state = TapeState(position)
        super().__init__(**kwargs)
        self._long_form = True

    @property
    def position(self) -> TrackedPosition:
        """The tracked logical position (after the last completed command)."""
        return self.state.position

    def after_failure(self, run: Run, error: Exception) -> None:
        """A failed recovery leaves the position unknown."""
        self.state.forget_position()

    # -- synchronise -------------------------------------------------------------------

    def synchronize(self, run: Run, action: Action) -> Event:
        """Read and compare the position (READ_STATE) or LOCATE back (LOCATE_BACK)."""
        if action is Action.LOCATE_BACK:
            return self._locate_back(run)
        f = run.failed
        if not f.cdb:
            return self._resync(run)
        op = f.opcode
        if op == _LOAD_UNLOAD and len(f.cdb) >= 6 and f.maybe_executed:
            return self._load_unload(run)
        if op not in _RELATIVE and op not in _ABSOLUTE:
            if UnitAttention.POWER_ON_RESET in run.report.unit_attentions:
                # the new nexus reported a reset (notify restored the settings): the
                # tape may be back at its beginning; the next positional command
                # returns to the tracked position first, or raises
                self.state.reset_seen(restored=True)
            return super().synchronize(run, action)
        before = self.state.position
        if op in _ABSOLUTE or _space_code(f.cdb) == 3:
            target = _target(f.cdb)
            seen = self.read_position(run)
            if target is not None and seen is not None and seen[0] == target:
                run.response = Response()
                return Event.EFFECT_PRESENT
            return Event.STATE_READ  # absolute: safe to send again from anywhere
        reset = run.report.position_lost
        if not f.maybe_executed and not reset:
            return Event.STATE_READ  # never reached the device, which was not reset
        if not before.known:
            run.error = self._ambiguous(run, before, "no position was known before it")
            return Event.STATE_AMBIGUOUS
        seen = self.read_position(run)
        if seen is None:
            why = (
                "the drive reports its position as unknown (BYCU/LOCU/LOLU/LONU, or block 0 "
                "without BOP)"
            )
            if not f.maybe_executed:
                why = (
                    "it never reached the drive, but the new path reported a power on or "
                    f"reset and {why}"
                )
            run.error = self._ambiguous(run, before, why)
            return Event.STATE_AMBIGUOUS
        block, file = seen
        # a reset rewinds: only a tape at BOP is explained by the 29/xx the nexus reported
        # (a nexus never used before reports 29/00 too)
        reset = reset and block == 0
        if run.relocated:
            return self._after_relocation(run, before, block)
        if not f.maybe_executed:
            return Event.STATE_READ if block == before.block else Event.POSITION_LOST
        expected, expected_file = _expected(f.cdb, before)
        if block == before.block and not (reset and op in _WRITES and block == 0):
            return Event.STATE_READ
        present = (expected is not None and block == expected) or (
            expected is None
            and expected_file is not None
            and file == expected_file
            and block != before.block
        )
        if present and (expected_file is None or file is None or file == expected_file):
            if op == _READ:  # it ran, its data is lost: read it again from where it was
                return Event.POSITION_LOST
            run.response = Response(transferred=len(f.data_out))
            return Event.EFFECT_PRESENT
        if reset:
            return Event.POSITION_LOST
        run.error = self._ambiguous(
            run, before, _seen_text(block, file), expected=expected, expected_file=expected_file
        )
        return Event.STATE_AMBIGUOUS

    def _resync(self, run: Run) -> Event:
        """A path switch: after a reset seen on the new nexus, check the position and
        LOCATE back when the tape was rewound."""
        before = self.state.position
        if run.relocated or not run.report.position_lost:
            return Event.NOTHING_OUTSTANDING
        reset = UnitAttention.POWER_ON_RESET in run.report.unit_attentions
        if not before.known:
            if reset:  # settled before the next positional command (or it raises)
                self.state.reset_seen(restored=True)
            return Event.NOTHING_OUTSTANDING
        seen = self.read_position(run)
        if seen is None:  # the drive cannot tell: locate back before a positional command
            if reset:
                self.state.reset_seen(restored=True)
            else:
                self.state.forget_position()
            return Event.NOTHING_OUTSTANDING
        block, file = seen
        if block == 0 and before.block != 0:
            return Event.POSITION_LOST
        if block != before.block:  # the drive says where it is: believe it
            self.state.set_position(TrackedPosition(block, file, True))
        return Event.NOTHING_OUTSTANDING

    def _load_unload(self, run: Run) -> Event:
        """LOAD is resent (loading a loaded tape changes nothing); an UNLOAD is done when
        TEST UNIT READY says no medium, not done when it answers GOOD."""
        f = run.failed
        if f.cdb[4] & 0x01:
            return Event.STATE_READ
        r = run.send(bytes(6))
        s = r.sense_data if r.check_condition else None
        if r.ok:
            return Event.STATE_READ
        if s is not None and s.sense_key == 0x02 and s.asc == 0x3A:
            run.response = Response()
            return Event.EFFECT_PRESENT
        run.error = self.in_doubt(run, f"TEST UNIT READY answered {_status(r)}")
        return Event.STATE_AMBIGUOUS

    def _after_relocation(self, run: Run, before: TrackedPosition, block: int) -> Event:
        """Back at the tracked position after a reset: decide."""
        f = run.failed
        if block != before.block:
            run.error = self._ambiguous(run, before, f"LOCATE back ended at block {block}")
            return Event.STATE_AMBIGUOUS
        if f.opcode not in _WRITES or not f.maybe_executed:
            return Event.STATE_READ  # a movement or a read: its effect went with the reset
        return self._verify_by_reading(run, before)

    def _verify_by_reading(self, run: Run, before: TrackedPosition) -> Event:
        """Read what is at the tracked position: the written record(s) or a filemark
        prove a WRITE or a WRITE FILEMARKS 1 ran; end of data proves it did not."""
        f = run.failed
        fixed = f.opcode == _WRITE and bool(f.cdb[1] & 0x01)
        count = int.from_bytes(f.cdb[2:5], "big")
        if (f.opcode == _WFM and count != 1) or (f.opcode == _WRITE and not f.data_out):
            run.error = self._ambiguous(run, before, "a reset; the write cannot be checked")
            return Event.STATE_AMBIGUOUS
        length = len(f.data_out) if f.opcode == _WRITE else 1
        read = Read6(count, fixed=True) if fixed else Read6(length)
        r = run.send(read.to_bytes(), data_in_len=length)
        s = r.sense_data if r.check_condition else None
        if s is not None and s.sense_key == 0x08 and not r.transferred:  # end of data here
            return Event.STATE_READ
        if f.opcode == _WRITE and r.ok and r.data == f.data_out:
            run.response = Response(transferred=len(f.data_out))
            return Event.EFFECT_PRESENT
        if f.opcode == _WFM and s is not None and s.filemark and s.sense_key == 0:
            run.response = Response()
            return Event.EFFECT_PRESENT
        run.error = self._ambiguous(
            run, before, "after a reset what is at the position is not what was written"
        )
        return Event.STATE_AMBIGUOUS

    def _locate_back(self, run: Run) -> Event:
        before = self.state.position
        cdb = _locate(before.block)
        r = run.send(cdb.to_bytes(), timeout=max(run.failed.timeout, run.timeout))
        if not r.ok:
            run.error = self._ambiguous(run, before, f"LOCATE back failed ({_status(r)})")
            return Event.STATE_AMBIGUOUS
        run.relocated = True
        return Event.POSITION_RESTORED

    def read_position(self, run: Run) -> tuple[int, int | None] | None:
        """READ POSITION on the recovery path: (block, file or None), or None when the
        drive says it does not know. Long form first, short when it is refused."""
        return self._read_position(lambda cdb, n: run.send(cdb, data_in_len=n))

    def _read_position(
        self, send: Callable[[bytes, int], Response]
    ) -> tuple[int, int | None] | None:
        if self._long_form:
            cdb = ReadPosition.long()
            r = send(cdb.to_bytes(), cdb.data_in_length)
            s = r.sense_data if r.check_condition else None
            if s is not None and s.sense_key == 0x05:
                self._long_form = False
            else:
                return self._parse(cdb, r)
        cdb = ReadPosition.short()
        return self._parse(cdb, send(cdb.to_bytes(), cdb.data_in_length))

    # -- after a reset -----------------------------------------------------------------

    def check_command(self, device: MultipathDevice, path: Path, cdb: bytes) -> bool:
        """After a power on or reset, before the next positional command: LOCATE back to
        the tracked position (when it is known), or raise PositionAmbiguousError (when
        the tape had moved to a position not known). A REWIND, LOCATE, LOAD or UNLOAD
        (or SPACE to end of data) settles the position itself; other commands (MODE
        SENSE, INQUIRY, READ POSITION, ...) go as they are and the check waits for the
        next one.

        Raises:
            PositionAmbiguousError: the position cannot be found again; ``cdb`` is not
                sent, nor any positional command after it until the application
                positions the tape.
            NotifyPathLost: ``path`` failed meanwhile.
        """
        target, doubt = self.state.reset_pending
        by = self.state.return_by
        if target is None and not doubt and by is None:
            return False
        op = cdb[0] if cdb else -1
        if op in _SETS_POSITION or (op in (_SPACE6, _SPACE16) and _space_code(cdb) == 3):
            self.state.settle_reset()
            return False
        if op not in _POSITIONAL:
            return True

        def send(c: bytes, n: int, timeout: float = self.command_timeout) -> Response:
            return send_past_ua(device, path, c, data_in_len=n, timeout=timeout)

        if by is not None:
            return self._refind(device, path, cdb, by, send)
        seen = self._read_position(send)
        if target is None:
            # a nexus never used reports 29/00 too: a drive away from BOP was not reset
            if seen is not None and seen[0] != 0 and not self.state.locate_failed:
                self.state.settle_reset(TrackedPosition(seen[0], seen[1], True))
                return False
            why = "the tape had moved to a position not known" + (
                "" if seen is None else f" and the drive reports block {seen[0]}"
            )
            raise self._lost_error(device, cdb, self.state.position, why)
        if seen is None or seen[0] != target.block:
            r = send(_locate(target.block).to_bytes(), 0, max(self.command_timeout, 300.0))
            if not r.ok:
                self.state.reset_unresolved()
                why = f"LOCATE back to block {target.block} failed ({_status(r)})"
                raise self._lost_error(device, cdb, target, why)
            log.info(
                "tape_located_after_reset",
                device=device.name,
                path=path.url,
                block=target.block,
                seen=None if seen is None else seen[0],
            )
        self.state.settle_reset(target)
        return False

    def _refind(
        self,
        device: MultipathDevice,
        path: Path,
        cdb: bytes,
        by: tuple[str, int],
        send: Callable[..., Response],
    ) -> bool:
        """Find an unknown position again after a reset: SPACE to end of data (the
        tape was at end of data: after a write or SPACE to end of data), or REWIND and
        SPACE over ``n`` filemarks (it was at the start of file ``n``)."""
        long = max(self.command_timeout, 300.0)
        if by[0] == "eod":
            steps: list[Space6 | Rewind] = [Space6(SpaceCode.END_OF_DATA, 0)]
        else:
            steps = [Rewind()] + ([Space6(SpaceCode.FILEMARKS, by[1])] if by[1] else [])
        for step in steps:
            r = send(step.to_bytes(), 0, long)
            if not r.ok:
                self.state.reset_unresolved()
                where = "end of data" if by[0] == "eod" else f"the start of file {by[1]}"
                why = f"finding {where} again failed ({_status(r)})"
                raise self._lost_error(device, cdb, self.state.position, why)
        log.info("tape_found_after_reset", device=device.name, path=path.url, by=by[0], file=by[1])
        self.state.settle_reset()
        return False

    def _lost_error(
        self, device: MultipathDevice, cdb: bytes, last: TrackedPosition, why: str
    ) -> PositionAmbiguousError:
        return PositionAmbiguousError(
            f"{device.name}: the drive reported a power on or reset and the tape may be "
            f"back at its beginning; the last known good position was {last}, and {why}; "
            f"{command_name(cdb)} was not sent (rewind or locate first)",
            last_known=last,
            seen=why,
            command=bytes(cdb),
            expected=None,
        )

    def _parse(self, cdb: ReadPosition, r: Response) -> tuple[int, int | None] | None:
        if not r.ok:
            return None
        try:
            p = parse_position(cdb.service_action, r.data)
        except DecodeError:
            return None
        if not position_known(p):
            return None
        if isinstance(p, PositionLong):
            return p.logical_object_number, p.logical_file_identifier
        return p.first_location, None

    def _ambiguous(
        self,
        run: Run,
        before: TrackedPosition,
        seen: str,
        *,
        expected: int | None = None,
        expected_file: int | None = None,
    ) -> PositionAmbiguousError:
        f = run.failed
        want = ""
        if expected is not None:
            want = f"; it would have left block {expected}"
        elif expected_file is not None:
            want = f"; it would have left file {expected_file}"
        doubt = "ran before" if f.maybe_executed else "can be sent again after"
        return PositionAmbiguousError(
            f"{run.device.name}: cannot tell whether {command_name(f.cdb)} {doubt} "
            f"{f.path.url} failed: last known good position {before}, seen on "
            f"{run.path.url}: {seen}{want}; nothing was resent",
            last_known=before,
            seen=seen,
            command=bytes(f.cdb),
            expected=expected,
        )


def _locate(block: int) -> Locate10 | Locate16:
    if block < 1 << 32:
        return Locate10(block_address=block)
    return Locate16(logical_identifier=block)


def _seen_text(block: int, file: int | None) -> str:
    return f"block {block}" + ("" if file is None else f" file {file}")


def _status(r: Response) -> str:
    if r.path_failed:
        return r.outcome.value
    s = r.sense_data
    return f"status {r.status:02X}h" + (f", {s}" if s is not None else "")


def _space_code(cdb: bytes) -> int | None:
    if cdb[0] in (_SPACE6, _SPACE16) and len(cdb) > 1:
        return cdb[1] & 0x0F
    return None


def _target(cdb: bytes) -> int | None:
    """The block an absolute command goes to, when it names one."""
    op = cdb[0]
    if op == _REWIND:
        return 0
    if op == _LOCATE10 and len(cdb) >= 10 and not cdb[1] & 0x06:
        return int.from_bytes(cdb[3:7], "big")
    if op == _LOCATE16 and len(cdb) >= 16 and not cdb[1] & 0x02 and not (cdb[1] >> 3) & 7:
        return int.from_bytes(cdb[4:12], "big")
    return None


def _expected(cdb: bytes, before: TrackedPosition) -> tuple[int | None, int | None]:
    """(block, file) a relative command leaves when it fully ran; None where unknown."""
    op = cdb[0]
    file = before.file
    if op in (_WRITE, _READ):
        n = int.from_bytes(cdb[2:5], "big") if cdb[1] & 0x01 else 1
        return before.block + n, file
    if op == _WFM:
        n = int.from_bytes(cdb[2:5], "big")
        return before.block + n, None if file is None else file + n
    code = cdb[1] & 0x0F
    raw = cdb[2:5] if op == _SPACE6 else cdb[4:12]
    count = int.from_bytes(raw, "big", signed=True)
    if code == 0:
        block = before.block + count
        return (block if block >= 0 else None), file
    if code == 1 and file is not None:
        return None, file + count
    return None, None
