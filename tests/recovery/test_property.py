"""Property: whatever single fault hits a scripted tape session, nothing is written twice
or lost; a call either succeeds or raises a typed ambiguity error."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapepath.errors import AmbiguityError, NoPathError
from tapepath.recovery import TapeRecovery
from tapepath.scsi.tape import Rewind, Write6, WriteFilemarks6
from tapepath.testing.faults import (
    BlackHole,
    CommandInfo,
    DriveReset,
    FaultPlan,
    LinkDown,
    ResponseLost,
    When,
)

from .support import library, send, tape_device

FAULTS = st.sampled_from(["lost", "down", "hole", "lost+reset", "down+reset"])
SESSION = st.lists(
    st.one_of(st.binary(min_size=1, max_size=4), st.just(None)), min_size=1, max_size=8
)


def _plan(kind: str, at: int) -> FaultPlan:
    seen = [0]

    def nth_data_command(info: CommandInfo) -> bool:
        if info.port != 0 or info.opcode not in (0x0A, 0x10):
            return False
        seen[0] += 1
        return seen[0] == at

    trigger = When(nth_data_command)
    plan = FaultPlan(seed=at)
    if kind.startswith("lost"):
        plan.add(ResponseLost(device="drive0", port=0, trigger=trigger))
    elif kind.startswith("down"):
        plan.add(LinkDown(device="drive0", port=0, trigger=trigger))
    else:
        plan.add(BlackHole(device="drive0", port=0, trigger=trigger, times=1))
    if kind.endswith("+reset"):
        plan.add(DriveReset(device="drive0", port=1, trigger=When(lambda i: i.port == 1)))
    return plan


class TestNeverTwice:
    """One fault anywhere in a session of records and filemarks."""

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(SESSION, FAULTS, st.integers(1, 8))
    def test_exact_or_typed(self, session: list[bytes | None], kind: str, at: int) -> None:
        """The tape ends as the completed calls say; an ambiguous call stops the session
        and the tape then holds the calls before it, with or without that one."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "PR0001L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            assert send(dev, Rewind().to_bytes()).ok
            lib.install(_plan(kind, at))
            done: list[Any] = []
            doubtful: Any = None
            for item in session:
                cdb, data = (
                    (WriteFilemarks6(1).to_bytes(), b"")
                    if item is None
                    else (Write6.for_data(item).to_bytes(), item)
                )
                try:
                    r = send(dev, cdb, data_out=data)
                except (AmbiguityError, NoPathError):
                    doubtful = item
                    break
                assert r.ok, r
                done.append(item)
            tape = lib.tape(0)
            assert tape is not None
            objects = [None if not isinstance(o, bytes) else o for o in tape.objects]
            if doubtful is None and len(done) == len(session):
                assert objects == done
            else:
                assert objects in (done, [*done, doubtful])
