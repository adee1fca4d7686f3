"""The specialised execute() a MultipathDevice installs while nothing special goes on."""

from __future__ import annotations

from typing import Any

from tapepath.multipath import MultipathDevice, PathState
from tests.multipath.fakes import FakeUnit, Mode
from tests.multipath.test_device import INQUIRY, TUR, WRITE6, _device


class TestFastPath:
    """The specialised execute() the device installs while nothing special goes on."""

    def test_installed_after_first_command_and_dropped_on_change(self) -> None:
        """The closure appears after a clean command and goes with a state change."""
        unit = FakeUnit()
        dev = _device(unit)
        assert "execute" not in vars(dev)
        dev.execute(TUR)
        assert "execute" in vars(dev)
        assert dev.execute.__doc__ == MultipathDevice.execute.__doc__
        dev.set_offline("mock://unit/port0")
        assert "execute" not in vars(dev)
        assert dev.execute(TUR).ok
        assert [p for p, _ in unit.executed] == [0, 1]

    def test_counts_like_the_method(self) -> None:
        """Commands, bytes and busy time are counted on the path as execute() counts them."""
        unit = FakeUnit()
        dev = _device(unit)
        for _ in range(3):
            dev.execute(INQUIRY, data_in_len=36)
        dev.execute(WRITE6, data_out=bytes(512))
        st = dev.paths[0].stats
        assert st.commands == 4
        assert st.errors == 0
        assert st.bytes_in == 3 * 36
        assert st.bytes_out == 512

    def test_new_observer_is_seen(self) -> None:
        """An observer added while the fast path is on sees the next command."""
        unit = FakeUnit()
        dev = _device(unit)
        dev.execute(TUR)
        seen: list[bytes] = []
        dev.add_observer(lambda cdb, out, r, data: seen.append(cdb))
        dev.execute(INQUIRY, data_in_len=36)
        dev.execute(TUR)
        assert seen == [INQUIRY, TUR]

    def test_failure_on_fast_path_fails_over(self) -> None:
        """A path failure met on the fast path goes to the slow path and fails over."""
        unit = FakeUnit()
        dev = _device(unit)
        dev.execute(TUR)
        assert "execute" in vars(dev)
        unit.modes[0] = Mode.DOWN
        assert dev.execute(TUR).ok
        assert dev.paths[0].state is PathState.FAILED
        assert dev.paths[0].stats.errors == 1
        assert unit.executed[-1][0] == 1

    def test_stale_closure_is_not_reinstalled(self) -> None:
        """Clearing the fast path while it is being set leaves it cleared."""
        unit = FakeUnit()
        dev = _device(unit)
        path = dev.paths[0]
        real = dev._fast_execute

        def racing(p: Any) -> Any:
            fn = real(p)
            dev._fast_path = None  # another thread cleared it meanwhile
            return fn

        dev._fast_execute = racing  # type: ignore[method-assign]
        dev._fast = path
        assert "execute" not in vars(dev)

    def test_kept_closure_follows_the_device(self) -> None:
        """A caller that kept dev.execute across a failover does not go back to the
        failed path with every command: the retired closure takes the full course."""
        unit = FakeUnit()
        dev = _device(unit)
        dev.execute(TUR)
        kept = dev.execute
        unit.modes[0] = Mode.DOWN
        assert kept(TUR).ok  # fails over
        n = len(unit.executed)
        for _ in range(3):
            assert kept(TUR).ok
        assert [p for p, _ in unit.executed[n:]] == [1, 1, 1]
        assert dev.paths[0].stats.errors == 1


class TestConcurrentChanges:
    """Several threads send while another changes the path states."""

    def test_no_new_command_on_an_offline_path(self) -> None:
        """Threads that kept dev.execute go on working through state changes, and once
        port 0 is offline no command started afterwards reaches it."""
        import threading  # noqa: PLC0415

        unit = FakeUnit()
        dev = _device(unit)
        dev.execute(TUR)
        kept = dev.execute  # the closure over port 0, kept by every worker
        errors: list[str] = []
        stop = threading.Event()
        offline_for_good = threading.Event()
        late_ports: list[int] = []
        mine = threading.local()

        def on_command(port: int, req: Any) -> None:
            if getattr(mine, "late", False):  # the call started after the last change
                late_ports.append(port)

        def worker() -> None:
            while not stop.is_set():
                mine.late = offline_for_good.is_set()
                r = kept(INQUIRY, data_in_len=36)
                if not r.ok:
                    errors.append(repr(r))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        p0 = dev.paths[0]
        for _ in range(30):
            dev.set_offline("mock://unit/port0")
            dev.set_online("mock://unit/port0")
            dev.group.reinstate(p0, PathState.ACTIVE, "checker: up")
            dev.failback()
        dev.set_offline("mock://unit/port0")
        unit.on_command = on_command
        offline_for_good.set()
        mine.late = True
        for _ in range(200):
            assert kept(INQUIRY, data_in_len=36).ok
        stop.set()
        for th in threads:
            th.join(10)
        assert errors == []
        assert 0 not in late_ports
        assert len(late_ports) >= 200
