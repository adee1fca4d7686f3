"""Property tests of MultipathDevice: whatever the ports do, no command runs twice."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tapepath.errors import NoPathError
from tapepath.multipath import CommandInDoubtError, MultipathDevice, PathMonitor
from tests.multipath.fakes import FakeClock, FakeUnit, Mode

TUR = bytes(6)
MODES = [Mode.UP, Mode.DOWN, Mode.NO_CONNECT, Mode.STANDBY, Mode.UNAVAILABLE]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("mode"), st.integers(0, 2), st.sampled_from(MODES)),
        st.tuples(st.just("write"), st.integers(0, 255)),
        st.tuples(st.just("tur")),
        st.tuples(st.just("tick")),
    ),
    max_size=40,
)


class TestNeverTwice:
    """Random port behaviour and commands: the device's promises hold."""

    @settings(max_examples=150)
    @given(ops)
    def test_invariants(self, script: list[tuple[object, ...]]) -> None:
        """Each WRITE runs at most once; an OK answer came from a port that ran it; only
        typed errors escape; every path state change keeps the group consistent."""
        unit = FakeUnit(ports=3)
        clock = FakeClock()
        mon = PathMonitor(clock=clock)
        dev = MultipathDevice(
            unit.transports,
            monitor=mon,
            clock=clock,
            sleep=clock.sleep,
            handler=None,
            polling_interval=1,
            checker="tur",
            marginal_failures=0,
        )
        for op in script:
            if op[0] == "mode":
                unit.modes[int(op[1])] = op[2]  # type: ignore[call-overload]
                continue
            if op[0] == "tick":
                clock.advance(1)
                mon.run_once()
                continue
            # WRITE(6), its CONTROL byte a tag; or TEST UNIT READY
            cdb = bytes((0x0A, 0, 0, 0, 1, int(op[1]))) if op[0] == "write" else TUR
            before = len(unit.executed)
            try:
                r = dev.execute(cdb, data_out=b"x" if cdb[0] == 0x0A else b"")
            except (NoPathError, CommandInDoubtError):
                r = None
            ran = [(port, c) for port, c in unit.executed[before:] if c == cdb]
            if cdb[0] == 0x0A:
                assert len(ran) <= 1, ran
            if r is not None and r.ok:
                assert ran, "an OK answer for a command no port ran"
                assert unit.modes[ran[-1][0]] is Mode.UP
            active = dev.group.active
            assert all(p.state.value == "active" for p in active)
            assert len({p.url for p in dev.paths}) == 3
