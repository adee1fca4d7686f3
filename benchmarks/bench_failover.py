"""Failover latency: hard cuts on tgtd iSCSI and on the sim; black-hole detection.

1. tgtd iSCSI, hard cut (default 200): a changer opened with ``tapepath.open_library``
   over two portals, path 0 through a relay (tests/proof/holding_proxy.py). While a
   MOVE MEDIUM is outstanding on path 0 its connection is deleted on the target side
   (``tgtadm --mode conn --op delete``); every other cut lands after tgtd ran the move
   (its answer held in the relay), the others before (the command held). Latency: from
   the moment tgtd closed the connection (the relay sees it) to the return of
   ``Library.load``/``unload``, which includes detection, probing the other path, the
   element-status check and, when needed, the resend.
2. Sim, hard cut (default 200): the same call on a VirtualLibrary (real clock); a
   LinkDown fault hits the MOVE MEDIUM on the active control path, so the library must
   also activate the standby control path (ALUA). Latency: from the fault firing to the
   call's return.
3. Black hole (default 10 per setting): tgtd SIGSTOPped (no reset, no answer) under an
   outstanding TEST UNIT READY on an iSCSI transport with ``nop_interval=1``; detection
   time: from the SIGSTOP to the command's LINK_LOST, for ``nop_misses`` 2 (the default)
   and 1. Then the same through the library: one path black-holed by the relay (both
   directions held) under an outstanding MOVE MEDIUM; from the hole to the move's
   completion on the other portal.

Goals: p99 <= 250 ms for a hard cut; a black hole detected within 2 x the NOP interval.
Usage: ``python -m benchmarks failover`` or
``python benchmarks/bench_failover.py [--cuts N] [--holes N] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

import tapepath
from tapepath.testing import FaultPlan, LinkDown, VirtualLibrary, When
from tapepath.testing.faults import CommandInfo
from tapepath.transport import Outcome, Response, Transport, open_transport

GOAL_CUT_P99 = 0.250
NOP_INTERVAL = 1.0
GOAL_BLACK_HOLE = 2 * NOP_INTERVAL
MOVE_MEDIUM = 0xA5
TUR = bytes(6)


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))


def _pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def _report(name: str, values: list[float], goal: float, what: str) -> bool:
    if not values:
        print(f"{name}: no samples")
        return False
    p50, p99 = _pct(values, 0.50), _pct(values, 0.99)
    print(
        f"{name}: n={len(values)} p50={p50 * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
        f"max={max(values) * 1000:.1f} ms mean={statistics.fmean(values) * 1000:.1f} ms; "
        f"{what} p99/goal = {p99 / goal:.3f} ({'met' if p99 <= goal else 'MISSED'})"
    )
    return p99 <= goal


def _move(lib: tapepath.Library, load: bool) -> Callable[[], object]:
    return (lambda: lib.load(1, 0)) if load else (lambda: lib.unload(0, 1))


def bench_sim(cuts: int) -> list[float]:
    """Hard cuts (LinkDown) on the sim; returns latencies in seconds."""
    out: list[float] = []
    wrong = 0
    for i in range(cuts):
        fired: list[float] = []

        def at_move(info: CommandInfo, fired: list[float] = fired) -> bool:
            if info.opcode == MOVE_MEDIUM:
                fired.append(time.perf_counter())
                return True
            return False

        with VirtualLibrary(f"bench-failover-{i}", slots=4, drives=2) as v:
            barcode = v.inventory()[v.slot_address(0)]
            with tapepath.open_library(v.changer_urls(), monitor=False) as lib:
                lib.inventory()
                v.install(
                    FaultPlan().add(LinkDown(device="changer", port=0, trigger=When(at_move)))
                )
                lib.load(1, 0)
                done = time.perf_counter()
            if v.where(str(barcode)) != v.drive_address(0):
                wrong += 1
        out.append(done - fired[0])
    if wrong:
        print(f"sim: {wrong} moves did not end where they should")
    return out


def bench_tgtd(cuts: int) -> tuple[list[float], list[float]] | None:
    """Hard cuts on tgtd; returns (after tgtd ran the move, before it saw it) latencies."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415
    from tests.proof.holding_proxy import HoldingProxy  # noqa: PLC0415
    from tests.proof.tgtd_cut import cut_during  # noqa: PLC0415
    from tests.support.tools import missing  # noqa: PLC0415

    if missing("tgtd", "tgtadm", "tgtimg"):
        print("tgtd: not installed, skipped")
        return None
    ran_lat: list[float] = []
    not_ran_lat: list[float] = []
    failures = 0
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=1, slots=4)
        second = tgt.add_portal()
        with HoldingProxy(tgt.portals[0]) as proxy:
            urls = [tgt.url(layout.changer_lun, port=p) for p in (proxy.port, second)]
            for i in range(cuts):
                ran = i % 2 == 0
                with tapepath.open_library(urls, monitor=False) as lib:
                    lib.inventory()
                    returned: list[float] = []
                    move = _move(lib, load=i % 2 == 0)

                    def call(
                        move: Callable[[], object] = move, returned: list[float] = returned
                    ) -> None:
                        move()
                        returned.append(time.perf_counter())

                    before = time.perf_counter()
                    _, error = cut_during(tgt, layout.tid, proxy, lib.paths[0], call, ran=ran)
                    cut_at = proxy.target_closed_at
                    if error is not None or not returned or cut_at is None or cut_at < before:
                        failures += 1
                        print(f"tgtd cut {i}: {error!r}")
                        continue
                    (ran_lat if ran else not_ran_lat).append(returned[0] - cut_at)
    if failures:
        print(f"tgtd: {failures} cuts failed")
    return ran_lat, not_ran_lat


def bench_black_hole(holes: int, misses: int) -> list[float] | None:
    """SIGSTOP detection times (seconds) with nop_interval=1 and ``misses``."""
    from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415
    from tests.support.tools import missing  # noqa: PLC0415

    if missing("tgtd", "tgtadm", "tgtimg"):
        return None
    out: list[float] = []
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=1, slots=2)
        url = tgt.url(layout.changer_lun) + f"?nop_interval={NOP_INTERVAL:g}&nop_misses={misses}"
        for _ in range(holes):
            t = open_transport(url)
            try:
                for _ in range(4):  # the new nexus's unit attention first
                    if t.execute(TUR, timeout=5).ok:
                        break
                result: list[Response] = []

                def wait(t: Transport = t, result: list[Response] = result) -> None:
                    result.append(t.execute(TUR, timeout=30))

                worker = threading.Thread(target=wait, daemon=True)
                tgt.pause()
                stopped = time.perf_counter()
                try:
                    worker.start()
                    worker.join(35)
                    detected = time.perf_counter()
                finally:
                    tgt.resume()
                r = result[0] if result else None
                if r is not None and r.outcome is Outcome.LINK_LOST:
                    out.append(detected - stopped)
                else:
                    print(f"black hole: the command ended {r!r}, not LINK_LOST")
            finally:
                t.close()
    return out


def bench_black_hole_failover(holes: int, misses: int) -> list[float] | None:
    """One path black-holed under an outstanding MOVE MEDIUM (the relay holds both
    directions, no reset): seconds from the hole to the move's completion on the other
    portal (detection by NOP-Out pings, then recovery and the resend)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tapepath.testing.tgtd import TgtdInstance  # noqa: PLC0415
    from tests.proof.holding_proxy import HoldingProxy  # noqa: PLC0415
    from tests.support.tools import missing  # noqa: PLC0415

    if missing("tgtd", "tgtadm", "tgtimg"):
        return None
    out: list[float] = []
    args = f"?nop_interval={NOP_INTERVAL:g}&nop_misses={misses}"
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=1, slots=4)
        second = tgt.add_portal()
        with HoldingProxy(tgt.portals[0]) as proxy:
            urls = [tgt.url(layout.changer_lun, port=p) + args for p in (proxy.port, second)]
            for i in range(holes):
                with tapepath.open_library(urls, monitor=False) as lib:
                    lib.inventory()
                    move = _move(lib, load=i % 2 == 0)
                    proxy.hold(requests=True, answers=True)
                    started = time.perf_counter()
                    try:
                        move()
                    finally:
                        proxy.release()
                    out.append(time.perf_counter() - started)
    return out


def main(argv: list[str]) -> int:
    """Run the three measurements; exit 1 if a goal is missed."""
    ap = argparse.ArgumentParser(prog="bench_failover")
    ap.add_argument("--cuts", type=int, default=200, help="hard cuts per setup")
    ap.add_argument("--holes", type=int, default=10, help="black holes per setting")
    ap.add_argument("--quick", action="store_true", help="20 cuts, 3 black holes")
    args = ap.parse_args(argv)
    if args.quick:
        args.cuts, args.holes = 20, 3
    _quiet()
    ok = True
    print(
        f"goals: hard cut p99 <= {GOAL_CUT_P99 * 1000:.0f} ms; black hole detected "
        f"<= {GOAL_BLACK_HOLE:.1f} s (2 x NOP interval {NOP_INTERVAL:g} s)"
    )
    tg = bench_tgtd(args.cuts)
    if tg is not None:
        ran, not_ran = tg
        ok &= _report("tgtd iSCSI hard cut, all", ran + not_ran, GOAL_CUT_P99, "cut->done")
        _report("  after tgtd ran the move (completed by element status)", ran, GOAL_CUT_P99, "")
        _report("  before tgtd saw it (resent)", not_ran, GOAL_CUT_P99, "")
    sim = bench_sim(args.cuts)
    ok &= _report("sim LinkDown hard cut (+ ALUA activation)", sim, GOAL_CUT_P99, "cut->done")
    if tg is not None:
        for misses in (2, 1):
            holes = bench_black_hole(args.holes, misses)
            if holes:
                met = _report(
                    f"tgtd SIGSTOP black hole, nop_interval=1 nop_misses={misses}",
                    holes,
                    GOAL_BLACK_HOLE,
                    "detection",
                )
                if misses == 1:
                    ok &= met
            holes = bench_black_hole_failover(args.holes, misses)
            if holes:
                _report(
                    f"  one path black-holed under a MOVE, nop_misses={misses}: hole->done",
                    holes,
                    GOAL_BLACK_HOLE,
                    "",
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
