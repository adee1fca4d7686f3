"""Property: a drive reset at any command of a random tape session (same path, no
failover) changes nothing the application sees, or makes a positional command raise
AmbiguousPositionError before it acts; never a record read from, or written at, the
wrong place."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapepath.errors import AmbiguityError
from tapepath.multipath import MultipathDevice
from tapepath.recovery import TapeRecovery
from tapepath.scsi.tape import Read6, Rewind, Space6, Write6, WriteFilemarks6
from tapepath.testing.faults import AtCommand, BlackHole, DriveReset, FaultPlan, LinkDown

from .support import library, send, tape_device

OP = st.one_of(
    st.tuples(st.just("write"), st.binary(min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["filemark", "rewind", "space_fm", "read", "eod"]), st.just(b"")),
)
SESSION = st.lists(OP, min_size=1, max_size=10)


def _do(dev: MultipathDevice, op: str, data: bytes) -> tuple[int, int, bytes]:
    """One step; (status, sense key, data) as the application sees it."""
    if op == "write":
        r = send(dev, Write6.for_data(data).to_bytes(), data_out=data)
    elif op == "filemark":
        r = send(dev, WriteFilemarks6(1).to_bytes())
    elif op == "rewind":
        r = send(dev, Rewind().to_bytes())
    elif op == "space_fm":
        r = send(dev, Space6(1, 1).to_bytes())
    elif op == "eod":
        r = send(dev, Space6(3, 0).to_bytes())
    else:
        r = send(dev, Read6(16).to_bytes(), data_in_len=16)
    key = r.sense[2] & 0x0F if r.check_condition and len(r.sense) > 2 else -1
    return r.status, key, r.data


def _run(
    session: list[tuple[str, bytes]], reset_at: int | None, failover: str = ""
) -> dict[str, Any]:
    with library(slots=2, drives=1) as lib:
        lib.insert(lib.drive_address(0), "PR0001L8")
        dev = tape_device(lib, TapeRecovery())
        send(dev, Rewind().to_bytes())
        if reset_at is not None and not failover:
            lib.install(
                FaultPlan().add(DriveReset(device="drive0", port=0, trigger=AtCommand(reset_at)))
            )
        elif reset_at is not None:  # port 0 fails at that command; port 1 finds a reset
            cut = BlackHole if failover == "hole" else LinkDown
            lib.install(
                FaultPlan().add(
                    cut(device="drive0", port=0, trigger=AtCommand(reset_at)),
                    DriveReset(device="drive0", port=1, trigger=AtCommand(1)),
                )
            )
        seen: list[tuple[int, int, bytes]] = []
        tapes: list[list[object]] = []
        raised = None
        for i, (op, data) in enumerate(session):
            try:
                seen.append(_do(dev, op, data))
            except AmbiguityError:
                raised = i
                break
            finally:
                tapes.append(list(lib.tape(0).objects))  # type: ignore[union-attr]
        return {"seen": seen, "tapes": tapes, "raised": raised}


class TestResetAnywhere:
    """A reset at any command of a session: the same results, or the typed error."""

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(session=SESSION, at=st.integers(1, 14))
    def test_same_results_or_ambiguity(self, session: list[tuple[str, bytes]], at: int) -> None:
        """Every step answers as in the fault-free run, until one raises (and that one
        did not act on the tape)."""
        want = _run(session, None)
        got = _run(session, at)
        n = len(got["seen"])
        assert got["seen"] == want["seen"][:n]
        assert got["tapes"][:n] == want["tapes"][:n]
        if got["raised"] is not None:  # the step that raised left the tape as it was
            before = want["tapes"][n - 1] if n else []
            assert got["tapes"][n] == before

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(session=SESSION, at=st.integers(1, 14), cut=st.sampled_from(["hole", "down"]))
    def test_failover_onto_a_reset_drive(
        self, session: list[tuple[str, bytes]], at: int, cut: str
    ) -> None:
        """Port 0 fails at any command and port 1 finds the drive reset (rewound): the
        same results as without faults, or the typed error before acting."""
        want = _run(session, None)
        got = _run(session, at, cut)
        n = len(got["seen"])
        assert got["seen"] == want["seen"][:n]
        assert got["tapes"][:n] == want["tapes"][:n]
        if got["raised"] is not None:
            before = want["tapes"][n - 1] if n else []
            assert got["tapes"][n] == before
