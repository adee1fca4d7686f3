"""The fault-free model a campaign checks the library against.

The model holds where each cartridge is, what each tape holds and where each loaded
tape is positioned, as a library without faults would leave them. A call that raised
puts its effect *in doubt*: the check then accepts the state with or without that one
effect, never a second copy and never the loss of a call that returned normally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attrs import define, field, frozen

__all__ = ["FILEMARK_TOKEN", "Doubt", "Model", "TapeCheck", "compare_tape"]

FILEMARK_TOKEN = b""
"""How a filemark appears in a model tape (a record is never empty)."""


@frozen
class Doubt:
    """A call that raised, so its effect may or may not be there.

    Attributes:
        kind: ``"move"`` or ``"write"`` (a record or a filemark).
        barcode: the cartridge concerned.
        source: for a move, the element the cartridge was in.
        destination: for a move, where it was going.
        offset: for a write, the tape offset the object would occupy.
        obj: for a write, the record (or :data:`FILEMARK_TOKEN`).
    """

    kind: str
    barcode: str
    source: int = 0
    destination: int = 0
    offset: int = 0
    obj: bytes = b""


@frozen
class TapeCheck:
    """How a tape compares with the model.

    Attributes:
        lost: records the model has (from calls that returned) that the tape lacks.
        duplicated: records present more often than they were written.
        foreign: records on the tape that no call wrote.
    """

    lost: int = 0
    duplicated: int = 0
    foreign: int = 0

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated or foreign."""
        return not (self.lost or self.duplicated or self.foreign)


def compare_tape(
    expected: Sequence[bytes], actual: Sequence[bytes], doubt: Doubt | None = None
) -> TapeCheck:
    """Compare a tape with the model, accepting the doubted write either way.

    Args:
        expected: the model's objects (records, and :data:`FILEMARK_TOKEN` for filemarks).
        actual: what the tape holds, in the same notation.
        doubt: a write in doubt on this tape: the tape may also hold
            ``expected[:offset] + [obj]``.

    Returns:
        The counts; all zero when ``actual`` is an accepted state.
    """
    accepted = [list(expected)]
    if doubt is not None and doubt.kind == "write":
        accepted.append([*expected[: doubt.offset], doubt.obj])
    if any(list(actual) == a for a in accepted):
        return TapeCheck()
    best = accepted[0]
    want: dict[bytes, int] = {}
    for a in accepted:
        for obj in a:
            if obj != FILEMARK_TOKEN:
                want[obj] = max(want.get(obj, 0), a.count(obj))
    have: dict[bytes, int] = {}
    for obj in actual:
        if obj != FILEMARK_TOKEN:
            have[obj] = have.get(obj, 0) + 1
    lost = sum(1 for obj in best if obj != FILEMARK_TOKEN and have.get(obj, 0) == 0)
    duplicated = sum(n - want[obj] for obj, n in have.items() if obj in want and n > want[obj])
    foreign = sum(n for obj, n in have.items() if obj not in want)
    if not (lost or duplicated or foreign):
        # Same records, other order or filemarks moved: count it as loss of order.
        lost = 1
    return TapeCheck(lost=lost, duplicated=duplicated, foreign=foreign)


@define
class Model:
    """Where the cartridges are and what their tapes hold, without faults.

    Attributes:
        location: barcode -> element address.
        tapes: barcode -> objects on the tape.
        positions: drive index -> (barcode, object offset) of the loaded tape.
        drive_addresses: drive index -> element address.
        doubts: the calls in doubt (at most one per device: a device is left alone
            after a call on it raised).
    """

    location: dict[str, int]
    drive_addresses: tuple[int, ...]
    tapes: dict[str, list[bytes]] = field(factory=dict)
    positions: dict[int, tuple[str, int]] = field(factory=dict)
    doubts: list[Doubt] = field(factory=list)

    # -- queries -------------------------------------------------------------------

    def in_drive(self, i: int) -> str | None:
        """The barcode in drive ``i``, or None."""
        addr = self.drive_addresses[i]
        for code, where in self.location.items():
            if where == addr:
                return code
        return None

    def full_addresses(self) -> set[int]:
        """The addresses holding a cartridge."""
        return set(self.location.values())

    # -- effects of calls that returned normally ---------------------------------------

    def moved(self, barcode: str, destination: int) -> None:
        """A move returned: the cartridge is at ``destination``."""
        self.location[barcode] = destination
        for i, addr in enumerate(self.drive_addresses):
            if addr == destination:
                self.positions[i] = (barcode, 0)
        self.positions = {
            i: p
            for i, p in self.positions.items()
            if self.location.get(p[0]) == self.drive_addresses[i]
        }

    def wrote(self, drive: int, obj: bytes) -> None:
        """A write (record, or filemark as :data:`FILEMARK_TOKEN`) returned."""
        code, off = self.positions[drive]
        tape = self.tapes.setdefault(code, [])
        del tape[off:]
        tape.append(obj)
        self.positions[drive] = (code, off + 1)

    def rewound(self, drive: int) -> None:
        """A rewind returned."""
        code = self.in_drive(drive)
        if code is not None:
            self.positions[drive] = (code, 0)

    def expect_read(self, drive: int) -> bytes | None:
        """What the next read returns (None: end of data), and move past it."""
        code, off = self.positions[drive]
        tape = self.tapes.get(code, [])
        if off >= len(tape):
            return None
        self.positions[drive] = (code, off + 1)
        return tape[off]

    # -- doubts ----------------------------------------------------------------------

    def doubt_move(self, barcode: str, destination: int) -> None:
        """A move raised: the cartridge is at its source or at ``destination``."""
        self.doubts.append(
            Doubt("move", barcode, source=self.location[barcode], destination=destination)
        )

    def doubt_write(self, drive: int, obj: bytes) -> None:
        """A write raised: the object may be on the tape at the current offset."""
        code, off = self.positions[drive]
        self.doubts.append(Doubt("write", code, offset=off, obj=obj))

    def reset_locations(self, initial: Mapping[str, int]) -> None:
        """The library forgot its robot state (a target restarted): back to ``initial``."""
        self.location = dict(initial)
        self.positions.clear()
        self.doubts = [d for d in self.doubts if d.kind != "move"]

    # -- the check ---------------------------------------------------------------------

    def misplaced(self, actual: Mapping[str, int | None]) -> int:
        """Cartridges whose actual element is neither the model's nor a doubted one."""
        bad = 0
        for code, where in self.location.items():
            ok = {where}
            for d in self.doubts:
                if d.kind == "move" and d.barcode == code:
                    ok |= {d.source, d.destination}
            if actual.get(code) not in ok:
                bad += 1
        return bad

    def check_tape(self, barcode: str, actual: Sequence[bytes]) -> TapeCheck:
        """Compare one tape with the model (accepting its doubted write either way)."""
        doubt = next((d for d in self.doubts if d.kind == "write" and d.barcode == barcode), None)
        return compare_tape(self.tapes.get(barcode, []), actual, doubt)

    def settle(
        self, actual_location: Mapping[str, int | None], tapes: Mapping[str, list[bytes]]
    ) -> None:
        """Adopt the observed state (after the check) as the start of the next scenario.

        Tape positions are forgotten: the workload rewinds a loaded tape before using it.
        """
        self.location = {c: a for c, a in actual_location.items() if a is not None}
        for code, objs in tapes.items():
            self.tapes[code] = list(objs)
        self.doubts.clear()
        self.positions.clear()
