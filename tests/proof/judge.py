"""Judging one faulted session against the fault-free one.

The rule (DESIGN.md, "Recovery: the invariant"): the session ends exactly as the
fault-free one, or a call raised a typed error; and whatever happened, nothing was
silently duplicated or lost. Concretely, in every case:

- the tape holds a prefix of what the fault-free session writes (no record or
  filemark twice, none skipped, none out of order);
- the files are read in the session's order and the records read back are a prefix of
  what was written, file by file;
- the robot's placements are a prefix of the fault-free ones (no move done twice), and
  the library holds the same cartridges (wherever they are, the gripper included);

and when no error was raised, all three are complete, ``position()`` said what it says
in the fault-free session, and every cartridge is where the fault-free session left it.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from enum import Enum

from tapepath.errors import AmbiguityError, TapepathError
from tests.proof.session import READ_ORDER, Outcome, expected_objects, files


class Verdict(Enum):
    """How a case ended (the matrix counts these)."""

    TRANSPARENT = "recovered transparently"
    AMBIGUITY = "typed ambiguity error"
    OTHER_TYPED = "other typed error"
    WRONG = "WRONG (the case failed: see its test)"


def _describe(obj: bytes | object) -> str:
    if isinstance(obj, bytes):
        return repr(obj[:24]) + ("..." if len(obj) > 24 else "")
    return "FILEMARK"


def _first_difference(got: Sequence[object], want: Sequence[object]) -> str:
    if isinstance(got, bytes) and isinstance(want, bytes):
        at = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
        if at is None:
            return f"{len(got)} bytes read, {len(want)} written"
        return f"byte {at}: got {got[at : at + 24]!r}, expected {want[at : at + 24]!r}"
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"object {i}: got {_describe(g)}, expected {_describe(w)}"
    if len(got) > len(want):
        return (
            f"{len(got) - len(want)} extra object(s) from {len(want)}: {_describe(got[len(want)])}"
        )
    return f"{len(want) - len(got)} object(s) missing from {len(got)}: {_describe(want[len(got)])}"


def _is_prefix(got: Sequence[object], want: Sequence[object]) -> bool:
    return len(got) <= len(want) and all(g == w for g, w in zip(got, want, strict=False))


def problems(o: Outcome, baseline: Outcome) -> list[str]:
    """Everything wrong with ``o`` (empty: the case passes)."""
    out: list[str] = []
    want_tape = expected_objects(o.block_size)
    written = files(o.block_size)
    if not _is_prefix(o.tape, want_tape):
        out.append(
            "tape is not a prefix of what was written: " + _first_difference(o.tape, want_tape)
        )
    if not _is_prefix(o.placements, baseline.placements):
        out.append(
            f"robot placements {o.placements} are not a prefix of the fault-free "
            f"{baseline.placements} (a move done twice or a wrong move)"
        )
    held = sorted(str(b) for b in o.locations.values())
    if held != sorted(str(b) for b in baseline.locations.values()):
        out.append(f"the library holds {held}: a cartridge vanished or appeared")
    order = [f for f, _r in o.read_back]
    if not _is_prefix(order, READ_ORDER):
        out.append(f"files read in the order {order}, not {list(READ_ORDER)}")
    for n, (f, records) in enumerate(o.read_back):
        want: Sequence[object] = written[f]
        got: Sequence[object] = records
        if o.block_size:  # fixed blocks: read returns chunks of blocks, compare the bytes
            want, got = b"".join(written[f]), b"".join(records)
        last = n == len(o.read_back) - 1
        ok = _is_prefix(got, want) if (last and o.error is not None) else got == want
        if not ok:
            out.append(f"file {f} read back wrong: " + _first_difference(got, want))
    if o.error is None:
        if o.tape != want_tape:
            out.append(
                "no error but the tape is incomplete: " + _first_difference(o.tape, want_tape)
            )
        if order != list(READ_ORDER):
            out.append(f"no error but files {order} read back, not {list(READ_ORDER)}")
        if o.position != baseline.position:
            out.append(f"no error but position() said {o.position}, not {baseline.position}")
        if o.placements != baseline.placements:
            out.append(f"no error but the robot placed {o.placements}, not {baseline.placements}")
        if o.locations != baseline.locations:
            moved = {
                a: (b, o.locations.get(a))
                for a, b in baseline.locations.items()
                if o.locations.get(a) != b
            }
            out.append(f"no error but cartridges ended elsewhere (address: expected, got): {moved}")
    elif not isinstance(o.error, TapepathError):
        tb = "".join(traceback.format_exception(o.error))
        out.append(f"untyped error at step {o.step!r}:\n{tb}")
    return out


def verdict(o: Outcome) -> Verdict:
    """The class of a case that passed :func:`problems`."""
    if o.error is None:
        return Verdict.TRANSPARENT
    if isinstance(o.error, AmbiguityError):
        return Verdict.AMBIGUITY
    return Verdict.OTHER_TYPED
