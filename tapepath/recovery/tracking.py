"""What recovery tracks from the command stream (no extra commands).

:class:`DeviceState` follows the settings that belong to an I_T nexus or that a reset
loses: PREVENT MEDIUM REMOVAL, the MODE SELECTs that completed (block length,
compression, ...) and the own persistent reservation key. :class:`TapeState` adds the
logical position of a tape drive (:class:`TrackedPosition`), updated after every
completed command from its CDB, status, sense (FILEMARK, EOM, ILI, INFORMATION) and
the READ POSITION answers the application asked for.

A power on or reset (29/xx) in a command's answer marks the nexus settings for
restoring (:attr:`DeviceState.nexus_reset`) and, for a tape, what the position needs
(:attr:`TapeState.reset_pending`, :attr:`TapeState.return_by`); the hook settles both
before the next command (``before_command``).

Both are fed by :meth:`observe`, which a recovery hook registers as the device's
completed-command observer. They are thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import attrs
from attrs import frozen

from tapepath.errors import DecodeError
from tapepath.recovery.position import (
    _MOVES,
    TrackedPosition,
    _after_locate,
    _after_read,
    _after_space,
    _after_write,
    _from_read_position,
    _position,
    _refind,
    position_known,
)
from tapepath.scsi.mode import ModeParameters
from tapepath.scsi.reservations import PrOutAction, PrOutParameters
from tapepath.scsi.sense import Sense, decode_sense
from tapepath.transport.base import Outcome, Response

__all__ = [
    "DeviceState",
    "ModeSettings",
    "Reservation",
    "TapeState",
    "TrackedPosition",
    "position_known",
    "power_on_reset_sense",
]

_GOOD = 0x00
_CHECK = 0x02
_OK = Outcome.OK
# sense keys after which the command did not run (nothing moved)
_NOT_RUN_KEYS = frozenset({0x02, 0x05, 0x06, 0x07})


@frozen
class Reservation:
    """The own persistent reservation state, as the commands that completed left it.

    Attributes:
        key: the registered key, or None when not registered.
        all_tg_pt: the registration covers every target port (nothing to move).
        pr_type: the type of the reservation held through this key, or None.
    """

    key: int | None = None
    all_tg_pt: bool = False
    pr_type: int | None = None


@frozen
class ModeSettings:
    """The mode settings made through the device (None: never set).

    Attributes:
        block_length: from the block descriptor of the last MODE SELECT that had one.
        compression: the DCE bit of the last data compression page (0Fh) selected.
    """

    block_length: int | None = None
    compression: bool | None = None


def _sense(r: Response) -> Sense | None:
    if not r.sense:
        return None
    try:
        return decode_sense(r.sense)
    except DecodeError:
        return None


def _reset_reported(r: Response) -> bool:
    """A unit attention 29/xx (power on, reset) or 28/xx (medium may have changed)."""
    sense = r.sense
    if len(sense) < 3:
        return False
    code = sense[0] & 0x7F
    if code in (0x70, 0x71):
        key, asc = sense[2] & 0x0F, sense[12] if len(sense) > 12 else -1
    elif code in (0x72, 0x73):
        key, asc = sense[1] & 0x0F, sense[2]
    else:
        return False
    return key == 0x06 and asc in (0x28, 0x29)


def _power_on_reset(r: Response) -> bool:
    """A unit attention 29/xx: power on, reset, bus device reset (settings are lost)."""
    return _reset_reported(r) and _asc(r.sense) == 0x29


def power_on_reset_sense(sense: bytes) -> bool:
    """Whether ``sense`` is a unit attention 29/xx (power on, reset: settings lost)."""
    return _power_on_reset(Response(status=_CHECK, sense=sense))


def _asc(sense: bytes) -> int:
    if sense[0] & 0x7F in (0x72, 0x73):
        return sense[2]
    return sense[12] if len(sense) > 12 else -1


def _not_run(r: Response) -> bool:
    """True when the answer proves the command did not run."""
    if r.outcome is not Outcome.OK:
        return r.detail is not None and not r.detail.maybe_executed
    if r.status == _CHECK:
        s = _sense(r)
        return s is not None and s.sense_key in _NOT_RUN_KEYS and not s.deferred
    return r.status not in (_GOOD, 0x04)


class DeviceState:
    """The nexus and reset-sensitive settings of one device, from its command stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prevent = False
        self._mode: dict[object, tuple[bytes, bytes]] = {}
        self._mode_settings = ModeSettings()
        self.reservation = Reservation()
        self.nexus_reset = False
        """A command's answer reported a power on or reset (29/xx): the settings of the
        nexus (PREVENT, mode, reservation) are to be restored before the next command."""
        self.on_reset: Callable[[], None] | None = None
        """Called (in the caller's thread) when a power on or reset is seen."""

    @property
    def has_settings(self) -> bool:
        """Whether a reset loses something the application set through the device."""
        return self.prevent or bool(self._mode) or self.reservation.key is not None

    def reset_seen(self, *, restored: bool = False) -> None:
        """A power on or reset was reported: mark what it lost (``restored``: the nexus
        settings were already restored, as recovery's notify does) and call
        :attr:`on_reset`."""
        if not restored:
            with self._lock:
                self.nexus_reset = True
        callback = self.on_reset
        if callback is not None:
            callback()

    def take_nexus_reset(self) -> bool:
        """Whether the nexus settings are to be restored (and clear the mark)."""
        with self._lock:
            was, self.nexus_reset = self.nexus_reset, False
            return was

    @property
    def mode_selects(self) -> list[tuple[bytes, bytes]]:
        """The MODE SELECTs to replay (CDB, data), oldest first, one per subject."""
        with self._lock:
            seen: list[tuple[bytes, bytes]] = []
            for item in self._mode.values():
                if item not in seen:
                    seen.append(item)
            return seen

    @property
    def mode(self) -> ModeSettings:
        """The block length and compression set through the device."""
        return self._mode_settings

    def observe(
        self, cdb: bytes, data_out: bytes, r: Response, data_in: bytes | memoryview
    ) -> None:
        """Update from one completed command."""
        if r.status == _CHECK and r.outcome is Outcome.OK and _power_on_reset(r):
            self.reset_seen()
            return
        if not cdb or not (r.outcome is Outcome.OK and r.status in (_GOOD, 0x04)):
            return
        op = cdb[0]
        if op == 0x1E and len(cdb) >= 5:  # PREVENT ALLOW MEDIUM REMOVAL
            with self._lock:
                self.prevent = bool(cdb[4] & 0x01)
        elif op in (0x15, 0x55):  # MODE SELECT(6)/(10)
            self._mode_select(cdb, data_out)
        elif op == 0x5F and len(cdb) >= 10:  # PERSISTENT RESERVE OUT
            self._pr_out(cdb, data_out)

    def _mode_select(self, cdb: bytes, data: bytes) -> None:
        try:
            params = ModeParameters.from_bytes(data, ten_byte=cdb[0] == 0x55)
        except DecodeError:
            return
        subjects: list[object] = []
        block = self._mode_settings.block_length
        comp = self._mode_settings.compression
        if params.block_descriptors:
            subjects.append("block_length")
            block = params.block_descriptors[0].block_length
        for page in params.pages:
            subjects.append((page.page_code, page.subpage_code))
            if page.page_code == 0x0F and page.subpage_code == 0 and page.data:
                comp = bool(page.data[0] & 0x80)
        with self._lock:
            for s in subjects:
                self._mode.pop(s, None)
                self._mode[s] = (bytes(cdb), bytes(data))
            self._mode_settings = ModeSettings(block, comp)

    def _pr_out(self, cdb: bytes, data: bytes) -> None:
        action = cdb[1] & 0x1F
        pr_type = cdb[2] & 0x0F
        try:
            params = PrOutParameters.from_bytes(data)
        except (DecodeError, ValueError):
            return
        with self._lock:
            res = self.reservation
            if action in (PrOutAction.REGISTER, PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY):
                sark = params.service_action_reservation_key
                if sark == 0:
                    res = Reservation()
                else:
                    res = Reservation(sark, params.all_tg_pt, res.pr_type)
            elif action == PrOutAction.RESERVE:
                res = attrs.evolve(res, pr_type=pr_type)
            elif action == PrOutAction.RELEASE:
                res = attrs.evolve(res, pr_type=None)
            elif action == PrOutAction.CLEAR:
                res = Reservation()
            elif action in (PrOutAction.PREEMPT, PrOutAction.PREEMPT_AND_ABORT):
                res = attrs.evolve(res, pr_type=pr_type or res.pr_type)
            self.reservation = res


class TapeState(DeviceState):
    """A tape drive's settings and logical position, from its command stream.

    Args:
        position: the starting position (default: unknown).
    """

    def __init__(self, position: TrackedPosition | None = None) -> None:
        super().__init__()
        self._pos = position if position is not None else TrackedPosition()
        self._ahead = 0
        """Blocks passed by good READs and WRITEs since ``_pos`` was made (the hot path
        only adds here; :meth:`_fold` brings ``_pos`` up to date)."""
        self._moved = False
        """The tape moved since the position was last known."""
        self._return_to: TrackedPosition | None = None
        self._doubt = False
        self.locate_failed = False
        """LOCATE back after a reset failed: only an absolute command settles it."""
        self._refind: tuple[str, int] | None = None
        """How to find the unknown position again: ("eod", 0) after a write or SPACE to
        end of data (writing leaves the tape at end of data); ("file", n) after SPACE
        forward over filemarks into file ``n``, with the block unknown."""
        self.return_by: tuple[str, int] | None = None
        """After a reset with the position unknown: how to find it again (see above)."""

    @property
    def reset_pending(self) -> tuple[TrackedPosition | None, bool]:
        """What a power on or reset left to settle before the next positional command:
        (the position to return to, or None; True when the position was not known and
        the tape had moved, so that it cannot be found again)."""
        with self._lock:
            return self._return_to, self._doubt

    def settle_reset(self, position: TrackedPosition | None = None) -> None:
        """The position after a reset is settled (back at ``position``, or an absolute
        command is about to set it)."""
        with self._lock:
            self._return_to = None
            self._doubt = False
            self.locate_failed = False
            self.return_by = None
            if position is not None:
                self._pos = position
                self._ahead = 0
                self._moved = False

    def reset_unresolved(self) -> None:
        """Returning to the position after a reset failed: every positional command
        raises until an absolute one (REWIND, LOCATE, LOAD) settles it."""
        with self._lock:
            self._return_to = None
            self.return_by = None
            self._doubt = True
            self.locate_failed = True

    def reset_seen(self, *, restored: bool = False) -> None:
        """A power on or reset: the tape may be back at its beginning. Remember the
        position to return to (when known and not the beginning), or that it cannot be
        found again (unknown after a motion); the tracked position becomes unknown."""
        with self._lock:
            pos = self._fold()
            if self._return_to is None and not self._doubt and self.return_by is None:
                if pos.known and pos.block != 0:
                    self._return_to = pos
                elif not pos.known and self._moved:
                    if self._refind is not None:
                        self.return_by = self._refind
                    else:
                        self._doubt = True
            self._pos = pos.forgotten()
            self._moved = self._moved or (pos.known and pos.block != 0)
        super().reset_seen(restored=restored)

    def _fold(self) -> TrackedPosition:
        """``_pos`` with the pending blocks added (the lock is held)."""
        if self._ahead:
            pos = self._pos
            self._pos = _position(pos.block + self._ahead, pos.file, pos.known)
            self._ahead = 0
        return self._pos

    @property
    def position(self) -> TrackedPosition:
        """The tracked position."""
        with self._lock:
            return self._fold()

    def set_position(self, position: TrackedPosition) -> None:
        """Replace the tracked position (recovery, after it proved where the tape is)."""
        with self._lock:
            self._pos = position
            self._ahead = 0

    def forget_position(self) -> None:
        """Mark the position unknown (keeping the last known good values)."""
        with self._lock:
            self._pos = self._fold().forgotten()
            self._moved = True

    def observe(
        self, cdb: bytes, data_out: bytes, r: Response, data_in: bytes | memoryview
    ) -> None:
        """Update settings and position from one completed command."""
        if (
            r.status == 0
            and (cdb[:1] == b"\x0a" or cdb[:1] == b"\x08")
            and len(cdb) >= 6
            and r.outcome is _OK
            and self._pos.known
        ):  # the stream's common case: a READ or WRITE that went well
            n = int.from_bytes(cdb[2:5], "big") if cdb[1] & 0x01 else 1
            with self._lock:
                if self._pos.known:
                    self._ahead += n
                    return
        super().observe(cdb, data_out, r, data_in)
        if not cdb:
            return
        with self._lock:  # one command's update at a time, read and write together
            pos = self._fold()
            if r.status == _CHECK and _reset_reported(r):
                self._pos = pos.forgotten()  # the drive may have rewound: not known now
                return
            new = self._next_position(cdb, r, data_in)
            if new is not None:
                self._pos = new
            if self._pos.known:
                self._moved = False
                self._refind = None
            elif cdb[0] in _MOVES and cdb[0] != 0x34 and not _not_run(r):
                self._moved = True
                self._refind = _refind(cdb, r, pos.known, self._pos)

    def _next_position(
        self, cdb: bytes, r: Response, data_in: bytes | memoryview
    ) -> TrackedPosition | None:
        """The position after ``cdb`` answered ``r``; None: unchanged."""
        op = cdb[0]
        pos = self._pos
        if op not in _MOVES:
            return None
        if len(cdb) < (16 if op >= 0x80 else 10 if op >= 0x20 else 6):
            return pos.forgotten()  # not a CDB this opcode can have: do not guess
        if _not_run(r):
            return None
        if r.outcome is not Outcome.OK:  # may have run: where the tape is is not known
            return pos.forgotten()
        good = r.status in (_GOOD, 0x04)
        s = None if good else _sense(r)
        if not good and s is None:
            return pos.forgotten()
        if op == 0x34:  # READ POSITION
            return _from_read_position(cdb, data_in, pos) if good else None
        if op == 0x01:  # REWIND
            return TrackedPosition(0, 0, True) if good else pos.forgotten()
        if op == 0x1B:  # LOAD UNLOAD
            load = len(cdb) > 4 and bool(cdb[4] & 0x01)
            return TrackedPosition(0, 0, True) if good and load else TrackedPosition(0, 0, False)
        if not pos.known:
            return None
        if op == 0x0A:
            return _after_write(cdb, good, s, pos)
        if op == 0x08:
            return _after_read(cdb, good, s, pos)
        if op == 0x10:  # WRITE FILEMARKS(6)
            n = int.from_bytes(cdb[2:5], "big")
            if cdb[1] & 0x02:  # setmarks: not tracked
                return pos.forgotten()
            return pos.moved(n, n) if good else pos.forgotten()
        if op in (0x11, 0x91):
            return _after_space(cdb, good, s, pos)
        if op in (0x2B, 0x92):
            return _after_locate(cdb, good, pos)
        return pos.forgotten()  # ERASE and anything else that moves
