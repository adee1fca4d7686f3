"""Path-failure notification and fencing of the sg transport, against a fake sysfs tree.

The fake sysfs mimics what a guest kernel shows for an iSCSI logical unit:
``class/scsi_generic/sgN/device`` is a link into ``devices/.../sessionK/.../H:C:T:L``
holding ``state``; ``class/iscsi_session/sessionK/state`` holds the session state. The
commands go to the fake sg driver of ``test_sg``.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.transport import Outcome
from tapepath.transport.sg import SgTransport
from tapepath.transport.sg_state import DOWN_STATES, DeviceStateWatch, PathDown
from tests.transport.test_sg import TUR, FakeSg, Reply


class FakeSysfs:
    """A minimal sysfs tree for one sg node behind one iSCSI session."""

    def __init__(self, root: Path, node: str = "sg3", session: int | None = 4) -> None:
        self.root = root
        parent = root / "devices" / "platform" / "host2"
        if session is not None:
            parent = parent / f"session{session}"
        lu = parent / "target2:0:0" / "2:0:0:1"
        lu.mkdir(parents=True)
        self.state_file = lu / "state"
        self.state_file.write_text("running\n")
        (lu / "delete").write_text("")
        link = root / "class" / "scsi_generic" / node
        link.mkdir(parents=True)
        (link / "device").symlink_to(lu)
        self.session_file: Path | None = None
        if session is not None:
            sdir = root / "class" / "iscsi_session" / f"session{session}"
            sdir.mkdir(parents=True)
            self.session_file = sdir / "state"
            self.session_file.write_text("LOGGED_IN\n")
        self.writes: list[str] = []

    def add_host_scan(self) -> Path:
        """The host's write-only ``scan`` attribute (an empty file here)."""
        host = self.root / "class" / "scsi_host" / "host2"
        host.mkdir(parents=True)
        (host / "scan").write_text("")
        return host / "scan"

    def set(self, device: str, session: str | None = None) -> None:
        """Make the kernel show these states."""
        self.state_file.write_text(device + "\n")
        if session is not None and self.session_file is not None:
            self.session_file.write_text(session + "\n")

    def device(self) -> str:
        """The device state as the fake kernel holds it."""
        return self.state_file.read_text().strip()


class ReopenableSg(FakeSg):
    """The fake sg driver whose node can be opened again after close (a rescanned unit)."""

    def __init__(self) -> None:
        super().__init__()
        self.opens = 0

    def open(self, path: str, flags: int) -> int:
        super().open(path, flags)
        self.opens += 1
        with self.cond:
            self.closed = False
        return 100 + self.opens

    def close(self, fd: int) -> None:
        if fd == 100 + self.opens:  # closing an older fd leaves the new one open
            super().close(fd)


@pytest.fixture
def sysfs(tmp_path: Path) -> FakeSysfs:
    """A fake sysfs tree with sg3 behind iSCSI session 4."""
    return FakeSysfs(tmp_path)


def make(fake: FakeSg, sysfs: FakeSysfs, interval: float | None = 0.05) -> SgTransport:
    """An SgTransport on the fake driver that reads the fake sysfs."""
    return SgTransport("/dev/sg3", syscalls=fake, sysfs=sysfs.root, state_interval=interval)


class TestWatch:
    """DeviceStateWatch reads the device and session state files."""

    def test_states_read(self, sysfs: FakeSysfs) -> None:
        """Both files are found through the device link and read stripped."""
        w = DeviceStateWatch.for_path("/dev/sg3", sysfs.root)
        assert w is not None
        assert (w.device_state(), w.session_state()) == ("running", "LOGGED_IN")
        assert w.check() is None
        sysfs.set("blocked", "FAILED")
        assert w.check() == PathDown("blocked", "FAILED")

    @pytest.mark.parametrize("state", sorted(DOWN_STATES))
    def test_every_down_state(self, sysfs: FakeSysfs, state: str) -> None:
        """Each state that keeps commands from the unit counts as down."""
        w = DeviceStateWatch("sg3", sysfs.root)
        sysfs.set(state)
        down = w.check()
        assert down is not None
        assert down.device_state == state

    def test_session_failed_alone_is_down(self, sysfs: FakeSysfs) -> None:
        """A FAILED session shows the path down before the device is blocked (seen in the VM)."""
        w = DeviceStateWatch("sg3", sysfs.root)
        sysfs.set("running", "FAILED")
        assert w.check() == PathDown("running", "FAILED")
        assert "iSCSI session FAILED" in PathDown("running", "FAILED").describe()

    def test_not_iscsi(self, tmp_path: Path) -> None:
        """Without a session in the device path only the device state counts."""
        fs = FakeSysfs(tmp_path, session=None)
        w = DeviceStateWatch("sg3", fs.root)
        assert w.session_file is None
        assert w.session_state() is None
        assert w.check() is None

    def test_vanished_state_file_is_down(self, sysfs: FakeSysfs) -> None:
        """A removed logical unit (no state file) counts as down."""
        w = DeviceStateWatch("sg3", sysfs.root)
        sysfs.state_file.unlink()
        assert w.check() == PathDown(None, "LOGGED_IN")

    def test_no_watch_for_other_nodes(self, sysfs: FakeSysfs) -> None:
        """Non-sg names and nodes sysfs does not list get no watch."""
        assert DeviceStateWatch.for_path("/dev/nst0", sysfs.root) is None
        assert DeviceStateWatch.for_path("/dev/sg9", sysfs.root) is None

    @given(st.binary(max_size=200))
    def test_arbitrary_state_bytes(self, raw: bytes) -> None:
        """Any bytes in the state file give a string or None, never an exception."""
        import tempfile  # noqa: PLC0415  (hypothesis runs without the tmp_path fixture)

        with tempfile.TemporaryDirectory() as d:
            fs = FakeSysfs(Path(d))
            fs.state_file.write_bytes(raw)
            w = DeviceStateWatch("sg3", fs.root)
            state = w.device_state()
            assert state is None or isinstance(state, str)
            assert state is None or len(state) <= 64
            w.check()


class TestDetection:
    """A command held by a blocked device comes back as LINK_LOST long before its deadline."""

    def test_blocked_ends_the_wait(self, sysfs: FakeSysfs) -> None:
        """The device goes blocked while the command waits: LINK_LOST, maybe executed."""
        fake = FakeSg(responder=lambda s: Reply(delay=None))
        t = make(fake, sysfs)
        threading.Timer(0.2, sysfs.set, ("blocked", "FAILED")).start()
        start = time.monotonic()
        r = t.execute(TUR, timeout=10)
        elapsed = time.monotonic() - start
        assert r.outcome is Outcome.LINK_LOST
        assert r.detail is not None
        assert r.detail.maybe_executed
        assert "blocked" in r.detail.message
        assert "FAILED" in r.detail.message
        assert 0.2 <= elapsed < 2.0  # the deadline is 10 s
        assert t.outstanding == 1  # the kernel still holds it: the kit stays alive

    def test_new_command_refused_while_down(self, sysfs: FakeSysfs) -> None:
        """Once seen down, the next command is refused unsent (maybe_executed False)."""
        fake = FakeSg(responder=lambda s: Reply(delay=None))
        t = make(fake, sysfs)
        sysfs.set("transport-offline", "FAILED")
        assert t.execute(TUR, timeout=5).outcome is Outcome.LINK_LOST
        sent = len(fake.seen)
        r = t.execute(TUR, timeout=5)
        assert r.outcome is Outcome.NO_CONNECT
        assert r.detail is not None
        assert not r.detail.maybe_executed
        assert "transport-offline" in r.detail.message
        assert len(fake.seen) == sent

    def test_path_back_sends_again(self, sysfs: FakeSysfs) -> None:
        """When the device reads running again, commands go through."""
        replies = iter([Reply(delay=None), Reply()])
        fake = FakeSg(responder=lambda s: next(replies))
        t = make(fake, sysfs)
        sysfs.set("blocked", "FAILED")
        assert t.execute(TUR, timeout=5).outcome is Outcome.LINK_LOST
        sysfs.set("running", "LOGGED_IN")
        r = t.execute(TUR, timeout=5)
        assert r.ok
        assert len(fake.seen) == 2

    def test_fast_command_reads_no_sysfs(
        self, sysfs: FakeSysfs, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A command that completes within the first interval never reads the state."""
        reads: list[str] = []
        real = DeviceStateWatch.check

        def counting(self: DeviceStateWatch) -> PathDown | None:
            reads.append(self.node)
            return real(self)

        monkeypatch.setattr(DeviceStateWatch, "check", counting)
        t = make(FakeSg(), sysfs)
        for _ in range(20):
            assert t.execute(TUR, timeout=5).ok
        assert reads == []

    def test_blocked_device_during_fast_command_not_read(self, sysfs: FakeSysfs) -> None:
        """A completion that arrives is taken as it is, whatever sysfs says."""
        t = make(FakeSg(responder=lambda s: Reply(delay=0.01)), sysfs)
        sysfs.set("blocked")
        assert t.execute(TUR, timeout=5).ok

    def test_slow_command_on_healthy_path_completes(self, sysfs: FakeSysfs) -> None:
        """A long command on a running device is waited for past many intervals."""
        t = make(FakeSg(responder=lambda s: Reply(delay=0.4)), sysfs)
        r = t.execute(TUR, timeout=5)
        assert r.ok

    def test_watch_off_waits_for_deadline(self, sysfs: FakeSysfs) -> None:
        """state_interval=None: a blocked device is only noticed at the deadline."""
        t = make(FakeSg(responder=lambda s: Reply(delay=None)), sysfs, interval=None)
        sysfs.set("blocked", "FAILED")
        start = time.monotonic()
        r = t.execute(TUR, timeout=0.4)
        assert r.outcome is Outcome.TIMED_OUT
        assert time.monotonic() - start >= 0.35

    def test_every_waiting_thread_released(self, sysfs: FakeSysfs) -> None:
        """Several threads held on one blocked node all come back LINK_LOST quickly."""
        t = make(FakeSg(responder=lambda s: Reply(delay=None)), sysfs)
        results: list[Outcome] = []
        lock = threading.Lock()

        def one() -> None:
            r = t.execute(TUR, timeout=10)
            with lock:
                results.append(r.outcome)

        threads = [threading.Thread(target=one) for _ in range(4)]
        for th in threads:
            th.start()
        time.sleep(0.15)
        start = time.monotonic()
        sysfs.set("blocked", "FAILED")
        for th in threads:
            th.join(5)
        assert time.monotonic() - start < 3.0  # the deadline is 10 s
        assert results == [Outcome.LINK_LOST] * 4

    def test_device_state_method(self, sysfs: FakeSysfs) -> None:
        """device_state() reports what sysfs holds; None without sysfs."""
        t = make(FakeSg(), sysfs)
        assert t.device_state() == "running"
        sysfs.set("transport-offline")
        assert t.device_state() == "transport-offline"
        other = SgTransport("/dev/sg7", syscalls=FakeSg(), sysfs=sysfs.root)
        assert other.device_state() is None

    def test_bad_interval(self, sysfs: FakeSysfs) -> None:
        """A zero or negative interval is refused."""
        with pytest.raises(ValueError, match="state_interval"):
            make(FakeSg(), sysfs, interval=0)


class TestFence:
    """fence() writes offline, unfence() running; refusals are reported, not raised."""

    def test_fence_and_unfence(self, sysfs: FakeSysfs) -> None:
        """Fencing writes offline (with the newline the kernel wants) and refuses commands."""
        fake = FakeSg()
        t = make(fake, sysfs)
        r = t.fence()
        assert r.done
        assert sysfs.state_file.read_text() == "offline\n"
        assert t.fenced
        sent = len(fake.seen)
        refused = t.execute(TUR, timeout=5)
        assert refused.outcome is Outcome.NO_CONNECT
        assert len(fake.seen) == sent
        back = t.unfence()
        assert back.done
        assert sysfs.device() == "running"
        assert not t.fenced
        assert t.execute(TUR, timeout=5).ok

    def test_fence_releases_waiters(self, sysfs: FakeSysfs) -> None:
        """A command waiting when fence() succeeds comes back LINK_LOST within an interval."""
        t = make(FakeSg(responder=lambda s: Reply(delay=None)), sysfs, interval=0.1)
        threading.Timer(0.2, t.fence).start()
        start = time.monotonic()
        r = t.execute(TUR, timeout=20)
        assert r.outcome is Outcome.LINK_LOST
        assert time.monotonic() - start < 3.0  # the deadline is 20 s

    def test_transport_offline_is_fenced(self, sysfs: FakeSysfs) -> None:
        """After the replacement timeout the kernel already fails held commands: nothing written."""
        sysfs.set("transport-offline", "FAILED")
        t = make(FakeSg(), sysfs)
        r = t.fence()
        assert r.done
        assert r.state == "transport-offline"
        assert sysfs.device() == "transport-offline"
        assert t.fenced

    def test_blocked_unit_removed_then_rescanned(self, sysfs: FakeSysfs) -> None:
        """Blocked (the kernel refuses a state write): delete the unit; unfence scans it back."""
        sysfs.add_host_scan()
        sysfs.set("blocked", "FAILED")
        fake = ReopenableSg()
        t = make(fake, sysfs)
        r = t.fence()
        assert r.done
        delete = sysfs.state_file.parent / "delete"
        assert delete.read_text() == "1\n"  # what the kernel's delete attribute takes
        assert sysfs.device() == "blocked"  # no state write was tried
        assert fake.closed  # the node is closed so the kernel can free its number
        assert t.execute(TUR, timeout=5).outcome is Outcome.NO_CONNECT
        early = t.unfence()  # the session is still down: no scan yet
        assert not early.done
        assert "FAILED" in early.reason
        assert not (sysfs.root / "class" / "scsi_host" / "host2" / "scan").read_text()
        sysfs.set("running", "LOGGED_IN")
        back = t.unfence()
        assert back.done, back
        scan = sysfs.root / "class" / "scsi_host" / "host2" / "scan"
        assert scan.read_text() == "0 0 1\n"  # channel, target, LUN of 2:0:0:1
        assert fake.opens == 2  # the node was opened again
        assert not t.fenced
        assert t.execute(TUR, timeout=5).ok

    def test_rescan_under_another_name(self, sysfs: FakeSysfs) -> None:
        """A unit that came back as another sg node is reported, the transport stays fenced."""
        sysfs.add_host_scan()
        sysfs.set("blocked", "FAILED")
        t = make(FakeSg(), sysfs)
        assert t.fence().done
        link = sysfs.root / "class" / "scsi_generic"
        (link / "sg3").rename(link / "sg8")
        sysfs.set("running", "LOGGED_IN")
        back = t.unfence()
        assert not back.done
        assert "sg8" in back.reason
        assert t.fenced

    def test_fence_refused(self, sysfs: FakeSysfs) -> None:
        """A state file that cannot be written: not done, with the reason; not fenced."""
        sysfs.state_file.chmod(0o444)
        if os.access(sysfs.state_file, os.W_OK):
            pytest.skip("running as root: the file mode does not stop the write")
        t = make(FakeSg(), sysfs)
        r = t.fence()
        assert not r.done
        assert r.errno == errno.EACCES
        assert "root" in r.reason
        assert not t.fenced

    def test_fence_not_taken(self, sysfs: FakeSysfs, monkeypatch: pytest.MonkeyPatch) -> None:
        """The kernel keeps another state: not done, the state read back named."""
        t = make(FakeSg(), sysfs)
        monkeypatch.setattr(DeviceStateWatch, "device_state", lambda self: "running")
        r = t.fence()
        assert not r.done
        assert r.state == "running"
        assert not t.fenced

    def test_no_sysfs(self, sysfs: FakeSysfs) -> None:
        """A node without sysfs state cannot be fenced."""
        t = SgTransport("/dev/sg7", syscalls=FakeSg(), sysfs=sysfs.root)
        assert not t.fence().done
        assert not t.unfence().done
        assert not t.fenced
