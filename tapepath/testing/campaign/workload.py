"""The application side of a scenario: random robot moves, writes, filemarks and reads.

The workload draws each call from the calls the model allows (a load into an empty
drive, an unload to an empty slot, a write on a loaded tape ...), makes it through the
public API (:class:`~tapepath.library.Library`, :class:`~tapepath.drive.TapeDrive`),
times it, and updates the model: the effect of a call that returned, or a doubt for a
call that raised. After a call on a device raised, the workload leaves that device
alone for the rest of the scenario, as an application would until an operator looked.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import structlog

from tapepath.errors import EndOfDataError
from tapepath.testing.campaign.model import FILEMARK_TOKEN, Model
from tapepath.testing.campaign.report import Tally

if TYPE_CHECKING:
    from tapepath.drive import TapeDrive
    from tapepath.library import Library

__all__ = ["Rig", "Workload"]

log = structlog.get_logger("tapepath.testing.campaign")

_READ_SIZE = 1 << 16


class Rig(Protocol):
    """What a workload drives: the handles, the layout and the fault hook."""

    @property
    def library(self) -> Library:
        """The changer handle."""
        ...

    @property
    def slot_addresses(self) -> tuple[int, ...]:
        """Storage element addresses; mtx slot ``n`` is ``slot_addresses[n - 1]``."""
        ...

    def drive(self, i: int) -> TapeDrive:
        """The handle of drive ``i``."""
        ...

    def before_call(self, index: int) -> None:
        """Called before call ``index`` (0-based) is chosen: inject faults here."""
        ...

    def bound(self, kind: str) -> float:
        """The longest a call of ``kind`` may take, in seconds."""
        ...

    def now(self) -> float:
        """The time calls are measured in (a virtual clock's waits count)."""
        ...


class Workload:
    """One scenario's calls against a rig, checked against a model.

    Args:
        rig: the library and drives.
        model: the fault-free model (updated in place).
        rng: the scenario's seeded generator.
        tally: where the counts go.
        tag: a unique prefix for the records written (so duplicates are visible).
    """

    def __init__(self, rig: Rig, model: Model, rng: random.Random, tally: Tally, tag: str) -> None:
        self.rig = rig
        self.model = model
        self.rng = rng
        self.tally = tally
        self.tag = tag
        self.errors = 0
        self._frozen: set[str] = set()
        self._serial = 0

    # -- choosing --------------------------------------------------------------------

    def _choices(self) -> list[tuple[str, int]]:
        m = self.model
        out: list[tuple[str, int]] = []
        slots = set(self.rig.slot_addresses)
        full = m.full_addresses()
        robot = "changer" not in self._frozen
        for i, _addr in enumerate(m.drive_addresses):
            name = f"drive{i}"
            code = m.in_drive(i)
            if code is None:
                if robot and full & slots:
                    out.append(("load", i))
                continue
            if robot and name not in self._frozen and slots - full:
                out.append(("unload", i))
            if name in self._frozen:
                continue
            if i not in m.positions:
                out.append(("rewind", i))
                continue
            out += [("write", i)] * 5 + [("filemark", i), ("rewind", i), ("read", i)]
        return out

    def run(self, calls: int) -> None:
        """Make up to ``calls`` calls (fewer when every device is left alone)."""
        for index in range(calls):
            self.rig.before_call(index)
            choices = self._choices()
            if not choices:
                return
            kind, i = self.rng.choice(choices)
            self._call(kind, i)

    # -- calling ---------------------------------------------------------------------

    def _timed(self, kind: str, fn: Callable[[], object]) -> tuple[object, BaseException | None]:
        start = self.rig.now()
        result: object = None
        error: BaseException | None = None
        try:
            result = fn()
        except Exception as exc:  # counted by type below
            error = exc
        took = self.rig.now() - start
        self.tally.calls += 1
        self.tally.max_call_seconds = max(self.tally.max_call_seconds, took)
        if took > self.rig.bound(kind):
            self.tally.deadline_overruns += 1
            self.tally.failures.append(
                f"{self.tag}: {kind} took {took:.2f} s (bound {self.rig.bound(kind):.1f} s)"
            )
        if error is not None:
            self.errors += 1
            self.tally.note_error(error)
            log.info("campaign_call_failed", tag=self.tag, call=kind, error=type(error).__name__)
        return result, error

    def _record(self, i: int) -> bytes:
        self._serial += 1
        head = f"{self.tag}/d{i}/r{self._serial}/".encode()
        return head + self.rng.randbytes(self.rng.randint(1, 2048))

    def _call(self, kind: str, i: int) -> None:
        m, rig = self.model, self.rig
        drive = f"drive{i}"
        if kind == "load":
            slots = [a for a in rig.slot_addresses if a in m.full_addresses()]
            addr = self.rng.choice(slots)
            code = next(c for c, a in m.location.items() if a == addr)
            slot = rig.slot_addresses.index(addr) + 1
            _, err = self._timed("move", lambda: rig.library.load(slot, i))
            if err is not None:
                m.doubt_move(code, m.drive_addresses[i])
                self._frozen |= {"changer", drive}
                return
            m.moved(code, m.drive_addresses[i])
            _, err = self._timed("rewind", lambda: rig.drive(i).rewind())
            if err is not None:
                self._frozen.add(drive)
        elif kind == "unload":
            empty = [a for a in rig.slot_addresses if a not in m.full_addresses()]
            addr = self.rng.choice(empty)
            held = m.in_drive(i)
            assert held is not None
            slot = rig.slot_addresses.index(addr) + 1
            _, err = self._timed("move", lambda: rig.library.unload(i, slot))
            if err is not None:
                m.doubt_move(held, addr)
                self._frozen |= {"changer", drive}
                return
            m.moved(held, addr)
        elif kind in ("write", "filemark"):
            obj = self._record(i) if kind == "write" else FILEMARK_TOKEN
            d = rig.drive(i)
            call: Callable[[], object] = (
                (lambda: d.write(obj)) if kind == "write" else (lambda: d.write_filemarks(1))
            )
            _, err = self._timed(kind, call)
            if i not in m.positions:  # the target forgot its robot state meanwhile
                self._frozen.add(drive)
                if err is None:
                    self.tally.records_foreign += 1
                    self.tally.failures.append(f"{self.tag}: a write succeeded on an empty drive")
                return
            if err is not None:
                m.doubt_write(i, obj)
                self._frozen.add(drive)
                return
            m.wrote(i, obj)
        elif kind == "rewind":
            _, err = self._timed(kind, lambda: rig.drive(i).rewind())
            if err is not None:
                self._frozen.add(drive)
                return
            m.rewound(i)
        else:
            self._read(i)

    def _read(self, i: int) -> None:
        d = self.rig.drive(i)
        if i not in self.model.positions:
            return
        want = self.model.expect_read(i)

        def read() -> bytes | None:
            # 64 KiB: far above twice the largest record. tgtd's READ of a record shorter
            # than the allocation sends (allocation - record) bytes; the drive handles it
            # by reading again, which this keeps out of the campaign's way (see
            # tests/reliability/test_findings.py).
            try:
                return d.read(_READ_SIZE)
            except EndOfDataError:
                return None

        got, err = self._timed("read", read)
        if err is not None:
            self._frozen.add(f"drive{i}")
            return
        if got != want:
            self.tally.reads_wrong += 1
            self.tally.failures.append(
                f"{self.tag}: drive {i} read {_short(got)}, the model says {_short(want)}"
            )
            self._frozen.add(f"drive{i}")


def _short(obj: object) -> str:
    if obj is None:
        return "end of data"
    if isinstance(obj, bytes):
        if not obj:
            return "a filemark"
        return f"{obj[:24]!r}... ({len(obj)} bytes, crc32 {zlib.crc32(obj):08x})"
    return repr(obj)
