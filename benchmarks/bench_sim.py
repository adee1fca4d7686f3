"""TEST UNIT READY per second through a SimTransport, against a MockTransport peer.

Both run in one thread in the same process: the mock's handler returns a GOOD
response at once, so the ratio is the cost of the virtual library's dispatch
(nexus, unit attentions, ALUA state, reservations) over a bare transport.
Goal: >= 50,000 commands per second through the SimTransport.

Usage: ``python -m benchmarks sim`` or ``python benchmarks/bench_sim.py [SECONDS]``.
"""

from __future__ import annotations

import sys
import time

import tapepath
from tapepath.testing import MockTransport, Request, VirtualLibrary
from tapepath.transport import Response, Transport

TUR = bytes(6)
GOAL = 50_000


def _rate(t: Transport, seconds: float) -> float:
    n = 0
    execute = t.execute
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            execute(TUR)
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main(argv: list[str]) -> int:
    """Measure and print; return 1 when the goal is missed."""
    seconds = float(argv[0]) if argv else 1.0
    good = Response()

    def handler(_req: Request) -> Response:
        return good

    with VirtualLibrary("bench-sim") as lib:
        lib.insert(lib.drive_address(0), "BENCH1L8")
        sim = tapepath.open_transport(lib.drive_urls(0)[0])
        sim.execute(TUR)  # consume the power-on unit attention
        assert sim.execute(TUR).ok
        mock = MockTransport(handler)
        _rate(sim, 0.1)
        _rate(mock, 0.1)
        sim_rate = _rate(sim, seconds)
        mock_rate = _rate(mock, seconds)
    print(f"sim  TEST UNIT READY: {sim_rate:10,.0f} commands/s (one thread)")
    print(f"mock TEST UNIT READY: {mock_rate:10,.0f} commands/s (peer)")
    print(f"ratio sim/mock: {sim_rate / mock_rate:.2f}")
    print(f"goal >= {GOAL:,}/s: {'met' if sim_rate >= GOAL else 'MISSED'}")
    return 0 if sim_rate >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
