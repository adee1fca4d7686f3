"""The fault matrix: every fault kind at every command of the scripted session.

Each case runs the session of :mod:`tests.proof.session` with one fault aimed at one
command (by command count) and checks it against the fault-free run with
:func:`tests.proof.judge.problems`. The counts (cases, recovered transparently, typed
ambiguity, other typed errors) are printed in pytest's terminal summary.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapepath.testing import AtCommand, LinkDown, ResponseLost
from tapepath.testing.faults import Fault
from tests.proof.faults import KINDS, FaultKind
from tests.proof.judge import Verdict, problems, verdict
from tests.proof.session import BARCODE, EXPECTED_OBJECTS, FILES, Command, Outcome, run_session

BASELINE: Outcome = run_session()

#: (fault kind, verdict) -> cases; read by tests/proof/conftest.py for the summary.
TALLY: Counter[tuple[str, Verdict]] = Counter()


def _cases() -> list[tuple[FaultKind, int, Command, int]]:
    """(kind, 1-based command index, the command, its count on its device and port)."""
    out = []
    for kind in KINDS:
        seen: Counter[tuple[str, int]] = Counter()
        for index, c in enumerate(BASELINE.commands, start=1):
            seen[(c.device, c.port)] += 1
            if kind.applies(c):
                out.append((kind, index, c, seen[(c.device, c.port)]))
    return out


CASES = _cases()


def _id(case: tuple[FaultKind, int, Command, int]) -> str:
    kind, index, c, _n = case
    return f"{kind.name}@{index:02d}-{c.device}:{c.port}-op{c.opcode:02X}"


class TestBaseline:
    """The fault-free session does what the matrix compares against."""

    def test_it_completes_and_reads_back_what_it_wrote(self) -> None:
        """No error; the tape and the read-back equal the records and filemarks written."""
        assert BASELINE.error is None, BASELINE.error
        assert BASELINE.tape == EXPECTED_OBJECTS
        assert BASELINE.read_back == FILES

    def test_it_moves_the_cartridge_three_times(self) -> None:
        """Load, unload and transfer: three placements, the last where the cartridge is."""
        holding = [a for a, b in BASELINE.locations.items() if b == BARCODE]
        assert [b for b, _dst in BASELINE.placements] == [BARCODE] * 3
        assert holding == [BASELINE.placements[-1][1]]
        assert len({dst for _b, dst in BASELINE.placements}) == 3

    def test_it_uses_both_devices(self) -> None:
        """Commands go to the changer and to drive 0 (so faults land on both)."""
        assert {c.device for c in BASELINE.commands} == {"changer", "drive0"}
        assert len(BASELINE.commands) > 30

    def test_it_needs_no_recovery(self) -> None:
        """No recovery transition in a run without faults."""
        assert BASELINE.recovery_events == ()


class TestFaultMatrix:
    """Every fault kind at every command index: same end state, or a typed error."""

    @pytest.mark.parametrize("case", CASES, ids=_id)
    def test_no_silent_duplicate_or_loss(self, case: tuple[FaultKind, int, Command, int]) -> None:
        """The session ends as the fault-free one or with a typed error; never dup/loss."""
        kind, index, c, n = case
        o = run_session(*kind.make(c, n))
        found = problems(o, BASELINE)
        where = (
            f"{kind.name} at command {index} ({c}), stopped at step {o.step!r}, error {o.error!r}"
        )
        assert not found, where + "\n" + "\n".join(found)
        v = verdict(o)
        if kind.must_recover:
            assert v is Verdict.TRANSPARENT, f"{where}: this fault leaves proof, it must recover"
        TALLY[(kind.name, v)] += 1


class TestMatrixCoverage:
    """The matrix covers every fault kind tapepath.testing exports."""

    def test_every_fault_class_has_a_row(self) -> None:
        """Each fault class of tapepath.testing.faults appears in KINDS."""
        import tapepath.testing.faults as faults_module  # noqa: PLC0415

        classes = {
            cls
            for cls in vars(faults_module).values()
            if isinstance(cls, type)
            and issubclass(cls, faults_module._FaultBase)
            and cls is not faults_module._FaultBase
        }
        made = {type(f) for k in KINDS for f in k.make(BASELINE.commands[0], 1)}
        assert classes <= made, f"no matrix row for {sorted(c.__name__ for c in classes - made)}"

    def test_every_case_aims_at_the_command_it_names(self) -> None:
        """An AtCommand trigger built from the baseline fires on that very command."""
        kind = next(k for k in KINDS if k.name == "unit_attention_reset")
        for index in (1, len(BASELINE.commands) // 2, len(BASELINE.commands)):
            c = BASELINE.commands[index - 1]
            n = sum(
                1 for x in BASELINE.commands[:index] if (x.device, x.port) == (c.device, c.port)
            )
            o = run_session(*kind.make(c, n))
            assert o.commands[:index] == BASELINE.commands[:index]


_ANYWHERE = [k for k in KINDS if k.applies(Command("changer", 0, 0))]


class TestFaultPairs:
    """Two faults at random commands: still no silent duplicate or loss."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        first=st.sampled_from(_ANYWHERE),
        second=st.sampled_from(_ANYWHERE),
        i=st.integers(1, len(BASELINE.commands)),
        j=st.integers(1, len(BASELINE.commands)),
    )
    def test_two_faults(self, first: FaultKind, second: FaultKind, i: int, j: int) -> None:
        """Any two faults: the end state is the fault-free one or a typed error was raised."""
        faults: list[Fault] = []
        for kind, index in ((first, i), (second, j)):
            c = BASELINE.commands[index - 1]
            n = sum(
                1 for x in BASELINE.commands[:index] if (x.device, x.port) == (c.device, c.port)
            )
            faults.extend(kind.make(c, n))
        o = run_session(*faults)
        found = problems(o, BASELINE)
        assert not found, f"{first.name}@{i} + {second.name}@{j}: {o.error!r}\n" + "\n".join(found)


class TestJudge:
    """The judge itself catches what it must (so a passing matrix means something)."""

    def test_a_duplicated_record_is_caught(self) -> None:
        """A tape with one record twice fails the judge."""
        bad = Outcome(
            read_back=BASELINE.read_back,
            locations=BASELINE.locations,
            tape=(EXPECTED_OBJECTS[0], *EXPECTED_OBJECTS),
            placements=BASELINE.placements,
            commands=BASELINE.commands,
            error=None,
            step="done",
        )
        assert any("object 1" in p for p in problems(bad, BASELINE))

    def test_a_lost_record_with_an_error_is_caught(self) -> None:
        """A skipped record is caught even when the session stopped with a typed error."""
        from tapepath.errors import AmbiguousPositionError  # noqa: PLC0415

        bad = Outcome(
            read_back=(),
            locations=BASELINE.locations,
            tape=EXPECTED_OBJECTS[1:3],
            placements=BASELINE.placements[:1],
            commands=BASELINE.commands,
            error=AmbiguousPositionError("x"),
            step="write",
        )
        assert problems(bad, BASELINE)

    def test_a_move_done_twice_is_caught(self) -> None:
        """An extra placement fails the judge."""
        bad = Outcome(
            read_back=BASELINE.read_back,
            locations=BASELINE.locations,
            tape=EXPECTED_OBJECTS,
            placements=(BASELINE.placements[0], *BASELINE.placements),
            commands=BASELINE.commands,
            error=None,
            step="done",
        )
        assert any("placements" in p or "placed" in p for p in problems(bad, BASELINE))

    def test_a_lost_response_cut_link_pair_recovers_or_is_typed(self) -> None:
        """A lost write response then a cut on the other port: typed or transparent."""
        writes = [i for i, c in enumerate(BASELINE.commands, 1) if c.opcode == 0x0A]
        c = BASELINE.commands[writes[1] - 1]
        n = sum(
            1 for x in BASELINE.commands[: writes[1]] if (x.device, x.port) == (c.device, c.port)
        )
        o = run_session(
            ResponseLost(device=c.device, port=c.port, trigger=AtCommand(n)),
            LinkDown(device=c.device, port=1 - c.port, trigger=AtCommand(1)),
        )
        assert not problems(o, BASELINE)
