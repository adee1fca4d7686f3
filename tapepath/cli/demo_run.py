"""The demo scenario: a backup on a virtual library while paths die, then proof.

:func:`run_demo` starts a :class:`~tapepath.testing.VirtualLibrary` with two control
paths and dual-ported drives, inventories it, loads a cartridge, writes records and
filemarks, and meanwhile a :class:`~tapepath.testing.faults.FaultPlan` kills the active
control path (during the load's MOVE MEDIUM) and the active port of the drive (in the
middle of the writes). It then reads the tape back and checks the library's cartridge
locations, and returns a :class:`DemoReport`: commands that met a failure and were
recovered, duplicates and losses found on the tape, locations, time to recover.

It does not configure logging: the caller routes structlog events to an
:class:`EventCollector` (the ``tapepath demo`` command does).
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from attrs import define, field, frozen

import tapepath
from tapepath.errors import EndOfDataError
from tapepath.testing import VirtualLibrary
from tapepath.testing.faults import ControlPathFailure, FaultPlan, LinkDown, When

__all__ = ["DemoReport", "EventCollector", "run_demo"]

_WRITE6 = 0x0A
_MOVE_MEDIUM = 0xA5


@define
class EventCollector:
    """A structlog sink: keeps every event and passes each to ``live`` as it comes.

    Attributes:
        events: the events so far (each with ``ts``, a monotonic time).
        live: called with each event (from the thread that logged it), or None.
    """

    live: Callable[[dict[str, Any]], None] | None = None
    events: list[dict[str, Any]] = field(factory=list)
    _lock: threading.Lock = field(factory=threading.Lock)

    def __call__(self, event: dict[str, Any]) -> None:
        """Record one event."""
        event.setdefault("ts", time.monotonic())
        with self._lock:
            self.events.append(event)
        if self.live is not None:
            self.live(event)

    def named(self, *names: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The events with one of these names, logged at or after ``since``."""
        with self._lock:
            return [e for e in self.events if e.get("event") in names and e["ts"] >= since]


@frozen
class DemoReport:
    """What the demo did and what it verified.

    Attributes:
        library: the virtual library's name.
        records_written: data records written.
        filemarks_written: filemarks written.
        records_read: data records read back.
        duplicates: records found on the tape more than once.
        missing: records written but not found.
        out_of_order: True when the tape's sequence differs from the written one.
        corrupt: records whose contents differ from what was written.
        locations_expected: barcode -> element address, as the work should leave them.
        locations_found: barcode -> element address found in the library afterwards.
        path_failures: paths that went to ``failed`` during the work.
        commands_recovered: commands that met a path failure and then completed.
        recovery_seconds: the longest time from a path failure to the completion of
            the operation that met it.
        elapsed: seconds the whole demo took.
    """

    library: str
    records_written: int
    filemarks_written: int
    records_read: int
    duplicates: int
    missing: int
    out_of_order: bool
    corrupt: int
    locations_expected: dict[str, int]
    locations_found: dict[str, int | None]
    path_failures: int
    commands_recovered: int
    recovery_seconds: float
    elapsed: float

    @property
    def locations_ok(self) -> bool:
        """Every cartridge is where the work should have left it."""
        return all(self.locations_found.get(k) == v for k, v in self.locations_expected.items())

    @property
    def ok(self) -> bool:
        """Everything verified: nothing duplicated, lost, reordered or corrupt; locations
        right; and the faults really happened and were recovered."""
        return (
            self.duplicates == 0
            and self.missing == 0
            and not self.out_of_order
            and self.corrupt == 0
            and self.locations_ok
            and self.path_failures >= 2
            and self.commands_recovered >= 2
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (stable keys)."""
        return {
            "library": self.library,
            "records_written": self.records_written,
            "filemarks_written": self.filemarks_written,
            "records_read": self.records_read,
            "duplicates": self.duplicates,
            "missing": self.missing,
            "out_of_order": self.out_of_order,
            "corrupt": self.corrupt,
            "locations_ok": self.locations_ok,
            "locations_expected": self.locations_expected,
            "locations_found": self.locations_found,
            "path_failures": self.path_failures,
            "commands_recovered": self.commands_recovered,
            "recovery_seconds": round(self.recovery_seconds, 4),
            "elapsed_seconds": round(self.elapsed, 3),
            "ok": self.ok,
        }


def _record(index: int, size: int) -> bytes:
    head = index.to_bytes(4, "big")
    body = (head * (size // 4 + 1))[: size - 8]
    return head + zlib.crc32(head + body).to_bytes(4, "big") + body


def _index_of(data: bytes) -> int:
    return int.from_bytes(data[:4], "big") if len(data) >= 4 else -1


def run_demo(
    collector: EventCollector,
    *,
    say: Callable[[str], None] = lambda _s: None,
    records: int = 60,
    record_size: int = 16384,
    filemark_every: int = 15,
    name: str | None = None,
) -> DemoReport:
    """Run the scenario and verify it.

    Args:
        collector: where the caller routes structlog events (read for the figures).
        say: narration, one line per step.
        records: data records to write.
        record_size: bytes per record.
        filemark_every: a filemark after every this many records (and one at the end).
        name: the virtual library's name (default: unique per process).

    Returns:
        The report; :attr:`DemoReport.ok` says whether everything verified.
    """
    began = time.monotonic()
    lib_name = name or f"demo-{os.getpid()}-{int(began * 1000) % 100000}"
    cut_at = max(records // 2, 1)
    plan = FaultPlan(seed=1).add(
        ControlPathFailure(
            trigger=When(lambda i: i.opcode == _MOVE_MEDIUM), control_path=None, drive_too=False
        ),
        LinkDown(
            device="drive0",
            port=0,
            trigger=When(lambda i: i.opcode == _WRITE6 and _index_of(i.data_out) >= cut_at),
        ),
    )
    windows: list[tuple[float, float]] = []

    @contextmanager
    def operation(text: str) -> Iterator[None]:
        say(text)
        start = time.monotonic()
        yield
        windows.append((start, time.monotonic()))

    with VirtualLibrary(lib_name, slots=10, import_export=1, drives=2, fault_plan=plan) as vl:
        say(
            f"virtual library {lib_name}: 2 drives with 2 ports each, control paths on "
            "drives 0 and 1 (0 active, 1 passive), 10 slots, 1 import/export"
        )
        with tapepath.open_library(vl.changer_urls(), monitor=False) as lib:
            with operation("inventory through both control paths"):
                inv = lib.inventory()
            full = [e for e in inv.slots if e.full]
            say(
                f"  {len(inv.drives)} drives, {len(inv.slots)} slots "
                f"({len(full)} with cartridges), {len(inv.import_export)} import/export"
            )
            first = inv.slot(1)
            barcode = first.barcode or ""
            expected = {e.barcode: e.address for e in inv if e.full and e.barcode}
            with operation(f"load slot 1 ({barcode}) into drive 0: the active control path dies"):
                lib.load(1, 0)
            with (
                tapepath.open_drive(vl.drive_urls(0), monitor=False) as drive,
                operation(
                    f"write {records} records of {record_size} bytes with filemarks to "
                    f"{barcode}: drive 0's active port dies after record {cut_at}"
                ),
            ):
                written: list[int] = []
                marks = 0
                for i in range(records):
                    drive.write(_record(i, record_size))
                    written.append(i)
                    if (i + 1) % filemark_every == 0:
                        drive.write_filemarks(1)
                        written.append(-1)
                        marks += 1
                if records % filemark_every:
                    drive.write_filemarks(1)
                    written.append(-1)
                    marks += 1
            with (
                tapepath.open_drive(vl.drive_urls(0), monitor=False) as drive,
                operation("rewind and read everything back"),
            ):
                drive.rewind()
                seen: list[int] = []
                corrupt = 0
                while True:
                    try:
                        data = drive.read(record_size * 2)
                    except EndOfDataError:
                        break
                    if not data:
                        seen.append(-1)
                        continue
                    idx = _index_of(data)
                    seen.append(idx)
                    if data != _record(idx, record_size):
                        corrupt += 1
            with operation("unload drive 0 back to slot 1"):
                lib.unload(0)
        found = {code: vl.where(code) for code in expected}
    data_seen = [i for i in seen if i >= 0]
    duplicates = len(data_seen) - len(set(data_seen))
    missing = len(set(range(records)) - set(data_seen))
    failures = collector.named("path_state_changed", since=began)
    failed_at = [e["ts"] for e in failures if e.get("new") == "failed"]
    decisions = [
        e
        for e in collector.named("path_failure_decision", since=began)
        if str(e.get("decision", "")).lower() != "fail"
    ]
    resent = collector.named("command_resent", since=began)
    worst = 0.0
    for start, end in windows:
        inside = [t for t in failed_at if start <= t <= end]
        if inside:
            worst = max(worst, end - min(inside))
    return DemoReport(
        library=lib_name,
        records_written=records,
        filemarks_written=marks,
        records_read=len(data_seen),
        duplicates=duplicates,
        missing=missing,
        out_of_order=seen != written,
        corrupt=corrupt,
        locations_expected=expected,
        locations_found=found,
        path_failures=len(failed_at),
        commands_recovered=max(len(decisions), len(resent)),
        recovery_seconds=worst,
        elapsed=time.monotonic() - began,
    )
