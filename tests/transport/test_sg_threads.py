"""Several threads on one sg transport, against the fake sg driver of test_sg."""

from __future__ import annotations

import random
import threading
import time

from tapepath.transport import Outcome
from tests.transport.test_sg import FakeSg, Reply, Seen, make, run_threads, tagged, wrong_answer


class TestThreads:
    """Several threads share one transport; each gets its own completion."""

    def test_concurrent_commands(self) -> None:
        """Completions in another order than submission reach the right callers."""

        def responder(seen: Seen) -> Reply:
            tag = seen.cdb[4]
            return Reply(data=bytes([tag]) * 8, delay=(7 - tag % 8) * 0.003)

        fake = FakeSg(responder=responder)
        t = make(fake)
        results: dict[int, list[bytes]] = {}
        failures: list[str] = []

        def worker(tag: int) -> None:
            got = []
            for _ in range(15):
                r = t.execute(tagged(tag), data_in_len=8, timeout=5)
                if not r.ok:
                    failures.append(repr(r))
                got.append(r.data)
            results[tag] = got

        threads = [threading.Thread(target=worker, args=(tag,)) for tag in range(1, 7)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(20)
        assert failures == []
        for tag in range(1, 7):
            assert results[tag] == [bytes([tag]) * 8] * 15
        assert t.outstanding == 0

    def test_mixed_timeouts_and_completions(self) -> None:
        """With stuck and late commands among them, every answer reaches its own caller."""
        rng = random.Random(7)

        def responder(seen: Seen) -> Reply:
            tag = seen.cdb[4]
            if tag % 5 == 0:
                return Reply(delay=None)
            return Reply(data=bytes([tag]) * 4, delay=rng.random() * 0.004)

        fake = FakeSg(responder=responder, queue_max=10_000)
        t = make(fake)
        wrong: list[str] = []

        def worker(base: int) -> None:
            for i in range(40):
                tag = (base * 40 + i) % 250 + 1
                stuck = tag % 5 == 0
                r = t.execute(tagged(tag), data_in_len=4, timeout=0.05 if stuck else 5)
                if wrong_answer(r, tag, stuck):
                    wrong.append(f"{tag}: {r!r}")

        run_threads(worker, 6)
        assert wrong == []

    def test_short_deadline_not_held_by_reader(self) -> None:
        """A thread's short deadline holds while another thread is waiting longer."""
        fake = FakeSg(responder=lambda s: Reply(delay=None if s.cdb[4] == 1 else 0.6))
        t = make(fake)
        long_result: list[Outcome] = []
        th = threading.Thread(
            target=lambda: long_result.append(t.execute(tagged(2), timeout=3).outcome)
        )
        th.start()
        time.sleep(0.05)
        start = time.monotonic()
        r = t.execute(tagged(1), timeout=0.1)
        assert time.monotonic() - start < 0.4
        assert r.outcome is Outcome.TIMED_OUT
        th.join(5)
        assert long_result == [Outcome.OK]
