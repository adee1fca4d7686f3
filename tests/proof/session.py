"""The scripted session of the fault matrix and what it leaves behind.

One session drives a :class:`~tapepath.testing.VirtualLibrary` (two control paths,
dual-ported drives, a :class:`~tapepath.testing.VirtualClock`) through the public API
only: load a cartridge, write records and filemarks, rewind, SPACE over a filemark and
read the second file, LOCATE back and read the first, ask the position, unload,
transfer, and exchange it with another cartridge. :func:`run_session` returns an
:class:`Outcome`: what the session read back, where every cartridge ended, what the
tape holds, every cartridge placement the robot made, the commands the library saw,
and the error that stopped the session (None when it ran to the end).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from attrs import field, frozen

import tapepath
from tapepath.testing import (
    FILEMARK,
    CommandInfo,
    FaultPlan,
    InjectUnitAttention,
    VirtualClock,
    VirtualLibrary,
    When,
)
from tapepath.testing.changer import ChangerModel

#: The cartridge the session works on and the slots it uses (mtx numbering, from 1).
BARCODE = "TP0001L8"
#: The cartridge the final EXCHANGE MEDIUM swaps with the session's (it starts in slot 2).
OTHER_BARCODE = "TP0002L8"
HOME_SLOT = 1
LAST_SLOT = 8
#: The records written: two files (3 records, then 2), each closed by a filemark.
FILES: tuple[tuple[bytes, ...], ...] = (
    tuple(f"file 0 record {i} ".encode() * (i + 3) for i in range(3)),
    tuple(f"file 1 record {i} ".encode() * (i + 5) for i in range(2)),
)
#: The order the session reads the files in (SPACE over file 0 first, then LOCATE back).
READ_ORDER = (1, 0)
#: What the tape must hold at the end: the records with a filemark after each file.
EXPECTED_OBJECTS: tuple[bytes | object, ...] = tuple(
    obj for records in FILES for obj in (*records, FILEMARK)
)
#: The block size of the fixed-block variant of the session.
FIXED = 512
#: Its records: whole blocks, each block different (so a block twice or missing shows).
FIXED_FILES: tuple[tuple[bytes, ...], ...] = tuple(
    tuple(
        b"".join(f"file {f} record {i} block {k} ".encode().ljust(FIXED, b".") for k in range(n))
        for i, n in enumerate(counts)
    )
    for f, counts in enumerate(((1, 2, 3), (2, 1)))
)


def files(block_size: int) -> tuple[tuple[bytes, ...], ...]:
    """The records the session writes in that mode (0: variable blocks)."""
    return FIXED_FILES if block_size else FILES


def expected_objects(block_size: int) -> tuple[bytes | object, ...]:
    """What the tape must hold at the end in that mode (fixed: one object per block)."""
    if not block_size:
        return EXPECTED_OBJECTS
    out: list[bytes | object] = []
    for records in FIXED_FILES:
        for r in records:
            out.extend(r[k : k + block_size] for k in range(0, len(r), block_size))
        out.append(FILEMARK)
    return tuple(out)


#: Seconds (on the virtual clock) a robot move takes, so faults can land mid-move.
MOVE_TIME = 4.0

_names = itertools.count()


@frozen
class Command:
    """One command the library saw: device, port and opcode."""

    device: str
    port: int
    opcode: int


@frozen
class Outcome:
    """What one session left behind.

    Attributes:
        read_back: (file number, its records) in the order the session read them (as
            far as it got): file 1 first, then file 0.
        position: (block, file) that ``TapeDrive.position()`` reported at the end of
            the reading, or None when the session did not get there.
        locations: every element address -> barcode (None: empty) at the end.
        tape: the objects on the session's cartridge (records as bytes, filemarks).
        placements: (barcode, destination address) of every cartridge the robot put
            down, in order (a finished move is one placement; a robot stop leaves the
            cartridge in the transport element and makes none).
        commands: every command the library saw, in order.
        error: the exception that stopped the session, or None.
        step: the session step that was running when it stopped ("done" if none).
        recovery_events: the ``recovery_transition`` log events of the run.
        block_size: the session's mode: 0 for variable blocks, else fixed blocks of that
            size (the records read back are then the chunks ``read`` returned).
    """

    read_back: tuple[tuple[int, tuple[bytes, ...]], ...]
    position: tuple[int | None, int | None] | None
    locations: dict[int, str | None]
    tape: tuple[bytes | object, ...]
    placements: tuple[tuple[str, int], ...]
    commands: tuple[Command, ...]
    error: BaseException | None
    step: str
    recovery_events: tuple[MutableMapping[str, Any], ...] = field(default=())
    block_size: int = 0


@contextmanager
def _placements() -> Iterator[list[tuple[str, int]]]:
    """Record every cartridge the robot puts down (a spy on ChangerModel.put, and on
    ChangerModel.exchange for the second cartridge of an exchange, which it places
    itself)."""
    seen: list[tuple[str, int]] = []
    put, exchange = ChangerModel.put, ChangerModel.exchange

    def spy_put(self: ChangerModel, destination: int, cartridge: Any, source: int) -> None:
        seen.append((cartridge.barcode, destination))
        put(self, destination, cartridge, source)

    def spy_exchange(
        self: ChangerModel, transport: int, source: int, first: int, second: int
    ) -> None:
        second_cartridge = self.element(first).cartridge
        exchange(self, transport, source, first, second)
        if second_cartridge is not None:
            seen.append((str(second_cartridge.barcode), second))

    ChangerModel.put = spy_put  # type: ignore[method-assign]
    ChangerModel.exchange = spy_exchange  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        ChangerModel.put = put  # type: ignore[method-assign]
        ChangerModel.exchange = exchange  # type: ignore[method-assign]


def _read_file(
    drive: tapepath.TapeDrive, f: int, read_back: list[tuple[int, list[bytes]]], step: list[str]
) -> None:
    """Read file ``f`` up to its filemark, noting each record as it comes."""
    records: list[bytes] = []
    read_back.append((f, records))
    while True:
        step[0] = f"read file {f} record {len(records)}"
        record = drive.read(64 * 1024)
        if not record:
            return
        records.append(record)


def _script(
    vlib: VirtualLibrary,
    read_back: list[tuple[int, list[bytes]]],
    position: list[tuple[int | None, int | None] | None],
    step: list[str],
    block_size: int,
) -> None:
    """The session itself, through tapepath.open_library / open_drive only.

    Reading: rewind, SPACE over the first filemark, read file 1, LOCATE to block 0,
    read file 0, then READ POSITION (it must say block 4, file 1).
    """
    policy: dict[str, Any] = {"monitor": False}
    step[0] = "open library"
    with tapepath.open_library(vlib.changer_urls(), **policy) as lib:
        step[0] = "load"
        lib.load(HOME_SLOT, 0)
        step[0] = "open drive"
        with tapepath.open_drive(vlib.drive_urls(0), **policy) as drive:
            step[0] = "rewind before writing"
            drive.rewind()
            if block_size:
                step[0] = f"set block size {block_size}"
                drive.set_block_size(block_size)
            for f, records in enumerate(files(block_size)):
                for i, record in enumerate(records):
                    step[0] = f"write file {f} record {i}"
                    drive.write(record)
                step[0] = f"write filemark after file {f}"
                drive.write_filemarks(1)
            step[0] = "rewind before reading"
            drive.rewind()
            step[0] = "space over file 0"
            drive.space(1, "filemarks")
            _read_file(drive, 1, read_back, step)
            step[0] = "locate to the beginning"
            drive.locate(0)
            _read_file(drive, 0, read_back, step)
            step[0] = "read position"
            p = drive.position()
            position[0] = (p.block, p.file)
            step[0] = "unload drive"
            drive.unload()
        step[0] = "unload to home slot"
        lib.unload(0, HOME_SLOT)
        step[0] = "transfer"
        lib.transfer(HOME_SLOT, LAST_SLOT)
        step[0] = "exchange"
        lib.exchange(BARCODE, OTHER_BARCODE)
    step[0] = "done"


def run_session(
    *faults: Any, catch: type[BaseException] = Exception, block_size: int = 0
) -> Outcome:
    """Run the session on a fresh library with ``faults`` installed.

    Args:
        *faults: fault values (see :mod:`tapepath.testing.faults`).
        catch: the exceptions recorded in the outcome instead of propagating.
        block_size: 0 for variable blocks, else the fixed block size to set.

    Returns:
        What the session left behind.
    """
    commands: list[Command] = []

    def count(info: CommandInfo) -> bool:
        commands.append(Command(info.device, info.port, info.opcode))
        return False

    plan = FaultPlan()
    plan.add(InjectUnitAttention(trigger=When(count)))  # never fires: counts every command
    plan.add(*faults)
    read_back: list[tuple[int, list[bytes]]] = []
    position: list[tuple[int | None, int | None] | None] = [None]
    step = ["start"]
    error: BaseException | None = None
    with (
        VirtualLibrary(
            f"proof{next(_names)}",
            slots=LAST_SLOT,
            drives=2,
            import_export=1,
            control_paths=(0, 1),
            ports_per_drive=2,
            clock=VirtualClock(),
            move_time=MOVE_TIME,
        ) as vlib,
        _placements() as placed,
        structlog.testing.capture_logs() as logs,
    ):
        vlib.install(plan)
        try:
            _script(vlib, read_back, position, step, block_size)
        except catch as exc:
            error = exc
        cart = vlib.cartridge(BARCODE)
        return Outcome(
            read_back=tuple((f, tuple(r)) for f, r in read_back),
            position=position[0],
            locations=vlib.inventory(),
            tape=tuple(cart.image.objects),
            placements=tuple(placed),
            commands=tuple(commands),
            error=error,
            step=step[0],
            recovery_events=tuple(e for e in logs if e.get("event") == "recovery_transition"),
            block_size=block_size,
        )
