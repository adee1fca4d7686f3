"""Which memory each command hands the kernel: the reader's kit and the per-thread kits.

The fast path uses a kit owned by the reader role; a command that leaves the fast path
takes that kit with it. These tests use the fake sg driver of test_sg and check, by the
header and buffer addresses the driver receives, that memory the kernel may still write
(a command given up on) is never handed out again, and that a kit whose command did
complete is used again.
"""

from __future__ import annotations

import ctypes
import errno
import random
import threading
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from tapepath.transport import Outcome
from tapepath.transport.sg import SgTransport
from tapepath.transport.sg_struct import SgIoHdr
from tests.transport.test_sg import (
    INQ,
    TUR,
    FakeSg,
    Reply,
    Seen,
    run_threads,
    tagged,
    wrong_answer,
)


def make(fake: FakeSg) -> SgTransport:
    """A transport on the fake driver, with no sysfs state watch."""
    return SgTransport("/dev/sg3", syscalls=fake, sysfs="/nonexistent")


class TestGivenUpKits:
    """A kit whose command was given up on never carries another command."""

    def test_stuck_commands_memory_not_reused(self) -> None:
        """Headers and data buffers of timed-out commands never reach the driver again."""
        stuck_tags = {3, 4, 8, 11}

        def responder(seen: Seen) -> Reply:
            if seen.cdb[4] in stuck_tags:
                return Reply(delay=None)
            return Reply(data=bytes([seen.cdb[4]]) * 4)

        fake = FakeSg(responder=responder, queue_max=100)
        t = make(fake)
        for tag in range(1, 14):
            stuck = tag in stuck_tags
            if tag % 2:
                r = t.execute(tagged(tag), data_in_len=4, timeout=0.02 if stuck else 5)
            else:
                r = t.execute(tagged(tag), timeout=0.02 if stuck else 5)
            assert (r.outcome is Outcome.TIMED_OUT) == stuck
            if not stuck and tag % 2:
                assert r.data == bytes([tag]) * 4
        tags = [s.cdb[4] for s in fake.seen]
        assert tags == list(range(1, 14))
        for i, tag in enumerate(tags):
            if tag not in stuck_tags:
                continue
            later_headers = fake.header_addresses[i + 1 :]
            assert fake.header_addresses[i] not in later_headers
            if fake.seen[i].dxfer_len:
                later_buffers = [s.dxferp for s in fake.seen[i + 1 :] if s.dxfer_len]
                assert fake.seen[i].dxferp not in later_buffers
        assert t.outstanding == len(stuck_tags)

    def test_reader_kit_that_left_the_fast_path(self) -> None:
        """A fast-path command that saw another's completion first, then timed out, takes
        the reader's kit with it: later commands get other memory, late data goes there."""
        release_late = threading.Event()

        def responder(seen: Seen) -> Reply:
            tag = seen.cdb[4]
            if tag == 1:  # the slow one: completes only after the test lets it
                return Reply(data=b"LATE", delay=0.6)
            return Reply(data=bytes([tag]) * 4, delay=0.05 if tag == 2 else 0.0)

        fake = FakeSg(responder=responder)
        t = make(fake)
        assert t.execute(INQ, data_in_len=4).ok  # the reader's kit, on this thread
        reader_header = fake.header_addresses[0]
        reader_buffer = fake.seen[0].dxferp
        slow: list[Outcome] = []

        def slow_caller() -> None:
            r = t.execute(tagged(1), data_in_len=4, timeout=0.3)
            slow.append(r.outcome)
            release_late.set()

        th = threading.Thread(target=slow_caller)
        th.start()
        deadline = time.monotonic() + 2
        while len(fake.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        # The slow command is on the fast path with the reader's kit (another thread).
        assert fake.header_addresses[1] == reader_header
        second = t.execute(tagged(2), data_in_len=4, timeout=5)
        assert second.data == b"\x02" * 4
        assert release_late.wait(5)
        th.join(5)
        assert slow == [Outcome.TIMED_OUT]
        # The late completion (0.6 s) is still to come: nothing may use that memory now.
        after = [t.execute(tagged(5 + i), data_in_len=4, timeout=5) for i in range(3)]
        time.sleep(0.35)
        after += [t.execute(tagged(8 + i), data_in_len=4, timeout=5) for i in range(3)]
        assert [r.data for r in after] == [bytes([5 + i]) * 4 for i in range(6)]
        for i in range(3, len(fake.seen)):
            assert fake.header_addresses[i] != reader_header
            assert fake.seen[i].dxferp != reader_buffer
        assert t.outstanding == 0  # the late completion was collected and discarded


class RecordingSg(FakeSg):
    """The fake driver, also logging (header address, data address, tag) per write."""

    def __init__(self, responder: object) -> None:
        super().__init__(responder=responder, queue_max=10_000)  # type: ignore[arg-type]
        self.log: list[tuple[int, int, int]] = []

    def write(self, fd: int, buf: ctypes.Structure) -> int:
        assert isinstance(buf, SgIoHdr)
        with self.cond:  # one lock for the log and the driver's queue: one order
            tag = ctypes.string_at(buf.cmdp, buf.cmd_len)[4]
            self.log.append((ctypes.addressof(buf), buf.dxferp or 0, tag))
            return super().write(fd, buf)


class TestThreadsAndKits:
    """Several threads, fast and shared paths mixed, with commands given up on."""

    def test_given_up_memory_never_reused_across_threads(self) -> None:
        """No header or data buffer of a timed-out command is written again, and every
        answer reaches its own caller."""
        rng = random.Random(11)

        def responder(seen: Seen) -> Reply:
            tag = seen.cdb[4]
            if tag % 5 == 0:
                return Reply(delay=None)
            return Reply(data=bytes([tag]) * 4, delay=rng.random() * 0.003)

        fake = RecordingSg(responder)
        t = make(fake)
        wrong: list[str] = []

        def worker(base: int) -> None:
            for i in range(30):
                tag = (base * 30 + i) % 250 + 1
                stuck = tag % 5 == 0
                cdb = tagged(tag)
                if i % 3 == 0 and not stuck:
                    r = t.execute(cdb, timeout=5)
                    if not r.ok:
                        wrong.append(f"{tag}: {r!r}")
                    continue
                r = t.execute(cdb, data_in_len=4, timeout=0.03 if stuck else 5)
                if wrong_answer(r, tag, stuck):
                    wrong.append(f"{tag}: {r!r}")

        run_threads(worker, 6)
        assert wrong == []
        log = fake.log
        assert len(log) == 180
        for i, (header, data, tag) in enumerate(log):
            if tag % 5:
                continue
            later = log[i + 1 :]
            assert header not in {h for h, _, _ in later}
            assert data not in {d for _, d, _ in later if d}
        assert t.outstanding == sum(1 for _, _, tag in log if tag % 5 == 0)


class TestCompletedKits:
    """A kit whose command completed is used again (no allocation per command)."""

    def test_fast_path_reuses_the_reader_kit(self) -> None:
        """Commands from several threads, one at a time, share the reader's header."""
        fake = FakeSg()
        t = make(fake)
        t.execute(TUR)
        for _ in range(3):
            th = threading.Thread(target=lambda: t.execute(INQ, data_in_len=8))
            th.start()
            th.join(5)
        t.execute(TUR)
        assert len(set(fake.header_addresses)) == 1
        assert len(fake.seen) == 5

    def test_kit_back_after_leaving_the_fast_path(self) -> None:
        """A fast-path command that saw another's completion first, then completed,
        gives the reader's kit back for the next command."""

        def responder(seen: Seen) -> Reply:
            tag = seen.cdb[4]
            return Reply(data=bytes([tag]) * 4, delay={1: 0.3, 2: 0.05}.get(tag, 0.0))

        fake = FakeSg(responder=responder)
        t = make(fake)
        t.execute(TUR)
        reader_header = fake.header_addresses[0]
        got: list[bytes] = []
        th = threading.Thread(
            target=lambda: got.append(t.execute(tagged(1), data_in_len=4, timeout=5).data)
        )
        th.start()
        deadline = time.monotonic() + 2
        while len(fake.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert fake.header_addresses[1] == reader_header
        second = t.execute(tagged(2), data_in_len=4, timeout=5)
        assert fake.header_addresses[2] != reader_header  # a thread's own kit
        th.join(5)
        assert (got, second.data) == ([b"\x01" * 4], b"\x02" * 4)
        t.execute(TUR)
        assert fake.header_addresses[3] == reader_header
        assert t.outstanding == 0


class TestPackIds:
    """Each kit has its own pack_id; a failed command's kit is not used again."""

    def test_ids_per_kit(self) -> None:
        """Commands on one kit share its id; a kit given up on leaves with its id."""
        replies = iter([Reply(), Reply(), Reply(delay=None), Reply(), Reply()])
        fake = FakeSg(responder=lambda s: next(replies))
        t = make(fake)
        t.execute(TUR)
        t.execute(INQ, data_in_len=4)
        assert t.execute(TUR, timeout=0.02).outcome is Outcome.TIMED_OUT
        t.execute(TUR)
        t.execute(TUR)
        ids = [s.pack_id for s in fake.seen]
        assert ids[0] == ids[1] == ids[2]
        assert ids[3] == ids[4] != ids[2]

    def test_failed_read_retires_the_kit(self) -> None:
        """After a read error, the failed command's completion (still held by the kernel)
        is not taken for the next command's."""
        fake = FakeSg(
            responder=lambda s: Reply(data=bytes([s.cdb[4]]) * 4, delay=0.01), read_errno=5
        )
        t = make(fake)
        first = t.execute(tagged(1), data_in_len=4, timeout=5)
        assert first.outcome is not Outcome.OK
        fake.read_errno = 0
        second = t.execute(tagged(2), data_in_len=4, timeout=5)
        assert second.ok
        assert second.data == b"\x02" * 4
        assert fake.seen[0].pack_id != fake.seen[1].pack_id
        assert fake.header_addresses[0] != fake.header_addresses[1]


_SIZES = [1, 4, 96]  # shared by the kinds, so one shape follows another of equal size
_COMMAND = st.one_of(
    st.tuples(st.just("none"), st.just(0)),
    st.tuples(st.just("in"), st.sampled_from([*_SIZES, 5000, (1 << 20) + 1])),
    st.tuples(st.just("out"), st.sampled_from(_SIZES)),
    st.tuples(st.just("into"), st.sampled_from([0, *_SIZES])),
)


class TestHeaderReuse:
    """A header loaded once is reused only for a command of the same shape."""

    @settings(max_examples=150, deadline=None)
    @given(st.lists(_COMMAND, min_size=1, max_size=12), st.booleans())
    def test_any_sequence_of_shapes(self, commands: list[tuple[str, int]], same_cdb: bool) -> None:
        """Whatever came before, each command reaches the driver with its own direction,
        length and buffer; data-in lands where it belongs and nowhere else."""
        fake = FakeSg()
        fake.responder = lambda s: Reply(data=bytes([len(fake.seen)]) * s.dxfer_len)
        t = make(fake)
        kept: list[tuple[bytearray, bytes]] = []  # execute_into buffers and their data
        for i, (kind, size) in enumerate(commands):
            cdb = INQ if same_cdb else tagged(i + 1)
            fill = bytes([i + 1])
            if kind == "none":
                r = t.execute(cdb)
                want = (-1, 0)
            elif kind == "in":
                r = t.execute(cdb, data_in_len=size)
                assert r.data == fill * size
                want = (-3, size)
            elif kind == "out":
                payload = bytes(range(size))
                r = t.execute(cdb, data_out=payload)
                assert fake.seen[-1].data_out == payload
                want = (-2, size)
            else:
                buf = bytearray(size)
                r = t.execute_into(cdb, buf)
                assert buf == fill * size
                kept.append((buf, fill * size))
                want = (-3 if size else -1, size)
            assert r.ok
            seen = fake.seen[-1]
            assert (seen.direction, seen.dxfer_len) == want
            assert seen.cdb == cdb
            assert all(bytes(b) == data for b, data in kept)
        assert len(fake.seen) == len(commands)


class ClosingSg(FakeSg):
    """The fake driver running ``during_poll`` once, inside the first poll that waits."""

    def __init__(self) -> None:
        super().__init__(responder=lambda s: Reply(delay=None))
        self.during_poll: Callable[[], None] | None = None

    def _poll(self, events: int, timeout_ms: int) -> int:
        hook, self.during_poll = self.during_poll, None
        if hook is not None:
            hook()
        return super()._poll(events, timeout_ms)


class TestNodeClosedUnderTheFastPath:
    """Fencing closes the node while a fast-path command polls it."""

    def test_fails_at_once_and_leaves_nothing(self) -> None:
        """The command comes back DEVICE_GONE at once; nothing stays outstanding."""
        fake = ClosingSg()
        t = make(fake)
        fake.during_poll = lambda: t._replace_fd(None)  # what fence() does on a blocked unit
        start = time.monotonic()
        r = t.execute(TUR, timeout=2)
        assert time.monotonic() - start < 1.0
        assert r.outcome is Outcome.DEVICE_GONE
        assert r.detail is not None
        assert r.detail.errno == errno.ENODEV
        assert t.outstanding == 0


class InterruptingSg(FakeSg):
    """The fake driver whose first poll raises KeyboardInterrupt (a Ctrl-C mid-command)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.interrupts = 1

    def poller(self, fd: int, events: int) -> Callable[[int], list[tuple[int, int]]]:
        inner = super().poller(fd, events)

        def poll(timeout_ms: int) -> list[tuple[int, int]]:
            if self.interrupts:
                self.interrupts -= 1
                raise KeyboardInterrupt
            return inner(timeout_ms)

        return poll


class TestInterrupted:
    """An interrupt on the fast path leaves the transport usable and the memory retired."""

    def _slow_first(self) -> Callable[[Seen], Reply]:
        calls = [0]

        def respond(seen: Seen) -> Reply:
            calls[0] += 1
            return Reply(data=b"late", delay=0.05) if calls[0] == 1 else Reply(data=b"next")

        return respond

    def test_execute_interrupted_then_works(self) -> None:
        """Ctrl-C during execute(): the next command goes at once on other memory."""
        fake = InterruptingSg(responder=self._slow_first())
        t = make(fake)
        try:
            raised = False
            try:
                t.execute(INQ, data_in_len=96, timeout=5)
            except KeyboardInterrupt:
                raised = True
            assert raised
            assert t.outstanding == 1  # retired: the kernel may still write to it
            start = time.monotonic()
            r = t.execute(INQ, data_in_len=96, timeout=5)
            assert r.ok
            assert r.data == b"next"
            assert time.monotonic() - start < 2.0
            assert fake.header_addresses[1] != fake.header_addresses[0]
            time.sleep(0.1)
            assert t.execute(TUR, timeout=5).ok  # collects the late completion
            assert t.outstanding == 0
        finally:
            t.close()

    def test_execute_into_interrupted_then_works(self) -> None:
        """The same through execute_into (the thread's own kit)."""
        fake = InterruptingSg(responder=self._slow_first())
        t = make(fake)
        try:
            buf = bytearray(96)
            raised = False
            try:
                t.execute_into(INQ, buf, timeout=5)
            except KeyboardInterrupt:
                raised = True
            assert raised
            r = t.execute_into(INQ, bytearray(96), timeout=5)
            assert r.ok
            assert fake.header_addresses[1] != fake.header_addresses[0]
        finally:
            t.close()
