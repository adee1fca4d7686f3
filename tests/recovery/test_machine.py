"""The recovery state machine: its table, its errors, its log events."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tapepath.recovery.errors import RecoveryStateError
from tapepath.recovery.machine import TRANSITIONS, Action, Event, RecoveryMachine, State

ALL_PAIRS = list(itertools.product(State, Event))
MISSING = [pair for pair in ALL_PAIRS if pair not in TRANSITIONS]


def _machine(**kw: object) -> RecoveryMachine:
    return RecoveryMachine("dev0", "sim://x/drive0?port=0", ["WRITE(6) 0Ah"], **kw)  # type: ignore[arg-type]


class TestTable:
    """The shape of the transition table."""

    def test_every_state_reachable(self) -> None:
        """Every state can be reached from detected."""
        seen = {State.DETECTED}
        frontier = [State.DETECTED]
        while frontier:
            s = frontier.pop()
            for (src, _e), (_a, dst) in TRANSITIONS.items():
                if src is s and dst not in seen:
                    seen.add(dst)
                    frontier.append(dst)
        assert seen == set(State)

    def test_final_states_have_no_exit(self) -> None:
        """Recovered and failed are final: nothing leaves them."""
        for src, _e in TRANSITIONS:
            assert src not in (State.RECOVERED, State.FAILED)

    def test_every_state_but_final_reaches_an_end(self) -> None:
        """From every state some path of events reaches recovered or failed."""
        ends = {State.RECOVERED, State.FAILED}
        changed = True
        while changed:
            changed = False
            for (src, _e), (_a, dst) in TRANSITIONS.items():
                if dst in ends and src not in ends:
                    ends.add(src)
                    changed = True
        assert ends == set(State)

    def test_working_states_can_abort(self) -> None:
        """From every state that is not final, the driver can give up to failed."""
        for s in (
            State.DETECTED,
            State.VERIFYING,
            State.NOTIFYING,
            State.SYNCHRONIZING,
            State.RESENDING,
        ):
            assert TRANSITIONS[(s, Event.ABORTED)] == (Action.FAIL, State.FAILED)

    def test_fail_action_only_into_failed(self) -> None:
        """The FAIL action always lands in failed, and failed is only reached by FAIL."""
        for (_s, _e), (action, dst) in TRANSITIONS.items():
            assert (action is Action.FAIL) == (dst is State.FAILED)

    def test_nothing_resent_from_an_ambiguous_state(self) -> None:
        """An ambiguous state read never leads to a resend."""
        action, dst = TRANSITIONS[(State.SYNCHRONIZING, Event.STATE_AMBIGUOUS)]
        assert action is Action.FAIL
        assert dst is State.FAILED


class TestMachine:
    """Driving the machine with events."""

    def test_effect_present_run(self) -> None:
        """Path failed, probe answered, notified, effect present: complete, recovered."""
        m = _machine()
        got = [
            m.handle(Event.PATH_FAILED),
            m.handle(Event.PROBE_FAILED),
            m.handle(Event.PROBE_ANSWERED, new_path="sim://x/drive0?port=1"),
            m.handle(Event.NOTIFIED),
            m.handle(Event.EFFECT_PRESENT),
        ]
        assert got == [
            Action.PROBE_NEXT_PATH,
            Action.PROBE_NEXT_PATH,
            Action.NOTIFY,
            Action.READ_STATE,
            Action.COMPLETE,
        ]
        assert m.state is State.RECOVERED
        assert m.new_path == "sim://x/drive0?port=1"
        assert len(m.history) == 5

    def test_reset_run(self) -> None:
        """A lost position goes through LOCATE back before the state is read again."""
        m = _machine()
        m.handle(Event.PATH_FAILED)
        m.handle(Event.PROBE_ANSWERED, new_path="p1")
        m.handle(Event.NOTIFIED)
        assert m.handle(Event.POSITION_LOST) is Action.LOCATE_BACK
        assert m.handle(Event.POSITION_RESTORED) is Action.READ_STATE
        assert m.handle(Event.STATE_READ) is Action.RESEND
        assert m.handle(Event.RESENT) is Action.COMPLETE
        assert m.state is State.RECOVERED

    def test_no_path(self) -> None:
        """No path left fails the recovery."""
        m = _machine()
        m.handle(Event.PATH_FAILED)
        assert m.handle(Event.NO_PATH_LEFT) is Action.FAIL
        assert m.state is State.FAILED

    @pytest.mark.parametrize(("state", "event"), MISSING)
    def test_missing_pairs_raise(self, state: State, event: Event) -> None:
        """A pair that is not in the table raises RecoveryStateError and changes nothing."""
        m = _machine()
        m.state = state
        with pytest.raises(RecoveryStateError) as info:
            m.handle(event)
        assert info.value.state == state.value
        assert info.value.event == event.value
        assert m.state is state
        assert m.history == []

    @given(st.lists(st.sampled_from(list(Event)), max_size=12))
    def test_any_event_sequence(self, events: list[Event]) -> None:
        """Any sequence either follows the table exactly or raises the typed error."""
        m = _machine()
        for e in events:
            before = m.state
            expected = TRANSITIONS.get((before, e))
            if expected is None:
                with pytest.raises(RecoveryStateError):
                    m.handle(e)
                assert m.state is before
            else:
                assert m.handle(e) is expected[0]
                assert m.state is expected[1]


class TestLog:
    """One recovery_transition event per transition."""

    def test_fields(self) -> None:
        """Device, old and new path, commands and elapsed time on every event."""
        now = [100.0]
        m = _machine(clock=lambda: now[0])
        with capture_logs() as logs:
            m.handle(Event.PATH_FAILED)
            now[0] = 100.25
            m.handle(Event.PROBE_ANSWERED, new_path="sim://x/drive0?port=1")
        events = [e for e in logs if e["event"] == "recovery_transition"]
        assert len(events) == 2
        first, second = events
        assert first["device"] == "dev0"
        assert first["old_path"] == "sim://x/drive0?port=0"
        assert first["new_path"] is None
        assert first["commands"] == ["WRITE(6) 0Ah"]
        assert first["elapsed"] == 0.0
        assert (first["old"], first["new"]) == ("detected", "verifying")
        assert second["new_path"] == "sim://x/drive0?port=1"
        assert second["elapsed"] == pytest.approx(0.25)
        assert second["trigger"] == "probe_answered"
        assert second["action"] == "notify"

    def test_no_event_on_error(self) -> None:
        """A refused event logs nothing."""
        m = _machine()
        with capture_logs() as logs, pytest.raises(RecoveryStateError):
            m.handle(Event.RESENT)
        assert not [e for e in logs if e["event"] == "recovery_transition"]
