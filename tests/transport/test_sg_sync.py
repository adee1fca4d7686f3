"""Nodes outside the sg major: the synchronous SG_IO on a helper thread (fake driver)."""

from __future__ import annotations

import errno
import threading
import time

from tapepath.transport import Outcome
from tests.transport.test_sg import INQ, TUR, FakeSg, Reply, make


class TestSynchronousNodes:
    """Nodes outside the sg major (nst, sch) use SG_IO in a helper thread."""

    def test_sg_io_path(self) -> None:
        """SG_IO runs the command and nothing is written to the node."""
        fake = FakeSg(major=9, responder=lambda s: Reply(data=b"tape"))
        r = make(fake, "/dev/nst0").execute(INQ, data_in_len=4)
        assert r.data == b"tape"
        assert fake.pending == []
        assert fake.seen[0].direction == -3

    def test_deadline_holds(self) -> None:
        """A blocked SG_IO still returns TIMED_OUT on time."""
        fake = FakeSg(major=9, responder=lambda s: Reply(delay=None))
        t = make(fake, "/dev/nst0")
        start = time.monotonic()
        r = t.execute(TUR, timeout=0.1)
        assert time.monotonic() - start < 0.5
        assert r.outcome is Outcome.TIMED_OUT
        fake.sync_release.set()

    def test_helper_thread_reused(self) -> None:
        """Sequential SG_IO calls share one helper thread; a stuck one is replaced."""
        fake = FakeSg(major=9, responder=lambda s: Reply(delay=None if s.cdb[4] == 9 else 0))
        t = make(fake, "/dev/nst0")
        for _ in range(4):
            assert t.execute(TUR).ok
        assert len(set(fake.ioctl_threads)) == 1
        assert fake.ioctl_threads[0] != threading.get_ident()
        assert t.execute(bytes((0, 0, 0, 0, 9, 0)), timeout=0.05).outcome is Outcome.TIMED_OUT
        assert t.execute(TUR).ok
        assert fake.ioctl_threads[-1] != fake.ioctl_threads[-2]
        fake.sync_release.set()
        t.close()

    def test_errno(self) -> None:
        """SG_IO refused with ENXIO (offline) is NO_CONNECT, not executed; ENODEV is gone."""
        fake = FakeSg(major=86, responder=lambda s: Reply(write_errno=errno.ENXIO))
        r = make(fake, "/dev/sch0").execute(TUR)
        assert r.outcome is Outcome.NO_CONNECT
        assert r.detail is not None
        assert not r.detail.maybe_executed
        fake = FakeSg(major=86, responder=lambda s: Reply(write_errno=errno.ENODEV))
        assert make(fake, "/dev/sch0").execute(TUR).outcome is Outcome.DEVICE_GONE

    def test_interrupted_may_have_run(self) -> None:
        """SG_IO interrupted (EINTR) may have started the command."""
        fake = FakeSg(major=9, responder=lambda s: Reply(write_errno=errno.EINTR))
        r = make(fake, "/dev/nst0").execute(TUR)
        assert r.detail is not None
        assert r.detail.maybe_executed
