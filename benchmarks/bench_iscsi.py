"""The iscsi:// data path against libiscsi's iscsi-perf, on the same private tgtd.

Figures (each pair measured in the same run, on the same sparse disk LUN, read once
through before any measurement so both initiators meet a warm page cache):

- sequential READ(16) of 256 KiB at queue depth 4: MB/s, tapepath vs iscsi-perf;
- sequential READ(16) of 4 KiB at queue depth 32: IOPS, tapepath vs iscsi-perf;
- the CPU each initiator spends per command (user + system, microseconds);
- the same reads at queue depth 1 (one command at a time, as a tape drive is driven),
  where tgtd's latency and the initiator's per-command cost add up (no goal);
- the QD4 and QD32 reads with tgtd's threads on CPU 0 and the initiator on CPU 1, as when
  target and initiator are two machines (printed apart; on a machine with fewer than
  two CPUs this part is skipped);
- a tape WRITE(6) stream of 256 KiB records to a tgtd tape LUN: MB/s (no peer);
- beside each read figure, a bare Python loop (:mod:`benchmarks.iscsi_bare`) that does
  nothing per command but the system calls: the most a Python initiator can reach here
  when each command's data is read on its own (at 256 KiB).

Goals: ratio >= 1.0 at 256 KiB QD4 and >= 0.9 at 4 KiB QD32, judged on the shared-CPU runs.
On loopback, target and initiator share the machine's cores: CPU an initiator spends
is CPU tgtd lacks, so the shared-CPU ratio follows each initiator's CPU per command;
the pinned runs show whether tapepath keeps up with a target that has a core of its own.
MB here is 10**6 bytes; both sides are computed from their IOPS the same way.

Usage: ``python -m benchmarks iscsi`` or ``python benchmarks/bench_iscsi.py
[--seconds S] [--rounds N] [--no-pin] [--no-qd1]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import threading
import time

from benchmarks.iscsi_bare import bare_loop
from tapepath.iscsi.connection import ConnectOptions
from tapepath.iscsi.driver import IscsiSession
from tapepath.iscsi.session import Task
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.tape import Rewind, Write6
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tapepath.transport.iscsi import IscsiTransport

DISK_MB = 1024
BLOCK = 512


_READ16 = struct.Struct(">BBQIH")


def read16(lba: int, blocks: int) -> bytes:
    """A READ(16) CDB."""
    return _READ16.pack(0x88, 0, lba, blocks, 0)


def peer_iops(
    url: str, depth: int, blocks: int, seconds: float, cpu: int | None = None
) -> tuple[float, float] | None:
    """iscsi-perf's average IOPS for sequential reads and its CPU seconds per command,
    or None when it is missing. ``cpu``: run it on that CPU only."""
    tool = shutil.which("iscsi-perf")
    if tool is None:
        return None
    cmd = [tool, "-m", str(depth), "-b", str(blocks), "-t", str(max(1, round(seconds))), url]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=False, preexec_fn=pin
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.findall(r"iops average (\d+)", res.stdout)
    if res.returncode != 0 or not found:
        print(f"  iscsi-perf failed ({res.returncode}): {res.stderr.strip()[-200:]}")
        return None
    iops = float(found[-1])
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return iops, used / max(iops * max(1, round(seconds)), 1.0)


def our_iops(session: IscsiSession, lun: int, depth: int, blocks: int, seconds: float) -> float:
    """Sequential READ(16)s kept ``depth`` in flight for ``seconds``; returns IOPS.

    Completions resubmit from the connection's reader thread (the callback API), as
    an event-driven initiator like iscsi-perf does; data lands in preallocated buffers.
    """
    size = blocks * BLOCK
    capacity = DISK_MB * 1024 * 1024 // BLOCK
    far = time.monotonic() + 3600
    finished = threading.Event()
    errors: list[str] = []
    state = {"lba": 0, "done": 0, "outstanding": 0, "last": 0.0}
    end = 0.0

    def submit(buf: memoryview) -> None:
        lba = state["lba"]
        state["lba"] = (lba + blocks) % (capacity - blocks)
        state["outstanding"] += 1
        sub = session.submit(lun, read16(int(lba), blocks), buf=buf, deadline=far, callback=on_done)
        if sub is None:
            errors.append("CmdSN window closed")
            state["outstanding"] -= 1

    def on_done(task: Task) -> None:
        state["outstanding"] -= 1
        if task.status != 0 or task.lost or task.failure:
            errors.append(f"read failed: status={task.status} lost={task.lost}")
        else:
            state["done"] += 1
            now = time.monotonic()
            state["last"] = now
            if now < end and not errors:
                assert task.buf is not None
                submit(task.buf)
        if state["outstanding"] == 0:
            finished.set()

    buffers = [memoryview(bytearray(size)) for _ in range(depth)]
    t0 = time.monotonic()
    end = t0 + seconds
    for buf in buffers:
        submit(buf)
    if not finished.wait(seconds + 30):
        raise RuntimeError("reads did not finish")
    if errors:
        raise RuntimeError(errors[0])
    return state["done"] / (state["last"] - t0)


def our_run(
    session: IscsiSession, lun: int, depth: int, blocks: int, seconds: float
) -> tuple[float, float]:
    """:func:`our_iops` and the process's CPU seconds per command over the run."""
    t0 = os.times()
    start = time.monotonic()
    iops = our_iops(session, lun, depth, blocks, seconds)
    elapsed = time.monotonic() - start
    t1 = os.times()
    used = t1.user - t0.user + t1.system - t0.system
    return iops, used / max(iops * elapsed, 1.0)


def warm_lun(session: IscsiSession, lun: int) -> float:
    """Read the whole disk LUN once (1 MiB at queue depth 4); returns the seconds it took.

    tgtd reads a sparse file: the first pass over it fills the page cache, later ones
    do not. Both initiators read from LBA 0 on, so without this pass whichever runs
    first pays for the whole cache fill.
    """
    blocks = 2048
    start = time.monotonic()
    needed = DISK_MB * 1024 * 1024 // (blocks * BLOCK)
    while True:
        iops = our_iops(session, lun, 4, blocks, 1.0)
        if iops * (time.monotonic() - start) >= needed:
            return time.monotonic() - start


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Set the CPU affinity of every thread of process ``pid``."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), cpus)


def threaded_iops(url: str, depth: int, blocks: int, seconds: float) -> float:
    """The same reads through ``Transport.execute_into`` from ``depth`` threads."""
    size = blocks * BLOCK
    counts = [0] * depth
    with IscsiTransport(url + "?nop_interval=0") as t:
        for _ in range(3):
            if t.execute(bytes(6), timeout=10).ok:
                break
        end = time.monotonic() + seconds

        def worker(i: int) -> None:
            buf = bytearray(size)
            lba = i * blocks
            while time.monotonic() < end:
                r = t.execute_into(read16(lba, blocks), buf, timeout=30)
                if not r.ok:
                    return
                counts[i] += 1
                lba = (lba + depth * blocks) % (DISK_MB * 2048 - depth * blocks)

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(depth)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return sum(counts) / (time.monotonic() - t0)


def tape_stream(tgt: TgtdInstance, vtl: VtlLayout, seconds: float) -> float:
    """MB/s of 256 KiB variable-block WRITE(6)s to a freshly loaded tape drive."""
    with IscsiTransport(tgt.url(vtl.changer_lun)) as changer:
        for _ in range(3):
            if changer.execute(bytes(6), timeout=10).ok:
                break
        move = MoveMedium(vtl.transport_address, vtl.slot_addresses[0], vtl.drive_addresses[0])
        r = changer.execute(move.to_bytes(), timeout=30)
        if not r.ok:
            raise RuntimeError(f"cannot load a cartridge: {r}")
    record = bytes(range(256)) * 1024
    cdb = Write6.for_data(record).to_bytes()
    written = 0
    with IscsiTransport(tgt.url(vtl.drive_luns[0])) as tape:
        for _ in range(3):
            if tape.execute(bytes(6), timeout=10).ok:
                break
        tape.execute(Rewind().to_bytes(), timeout=60)
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            r = tape.execute(cdb, data_out=record, timeout=30)
            if not r.ok:
                break  # end of medium
            written += len(record)
        elapsed = time.monotonic() - t0
    return written / elapsed / 1e6


def ratio(ours: float, theirs: float | None) -> str:
    """``ours / theirs`` for printing."""
    return f"{ours / theirs:.2f}" if theirs else "n/a (no iscsi-perf)"


def _measure(
    session: IscsiSession, vtl: VtlLayout, url: str, args: argparse.Namespace, *, pinned: bool
) -> list[tuple[str, int, dict[str, list[tuple[float, float]]]]]:
    """Every (label, blocks, runs by initiator) of one placement (shared or pinned CPUs)."""
    assert vtl.disk_lun is not None
    port = session.options.port
    rows = []
    cases = [("256 KiB QD4", 4, 512), ("4 KiB QD32", 32, 8)]
    if not pinned and args.qd1:
        # one command at a time, as a tape drive is driven: latency, not throughput
        cases += [("256 KiB QD1", 1, 512), ("4 KiB QD1", 1, 8)]
    for label, depth, blocks in cases:
        # rotate the order each round and keep medians, so other load on the machine
        # hits every initiator alike
        runs: dict[str, list[tuple[float, float]]] = {
            "callback": [],
            "threads": [],
            "bare": [],
            "peer": [],
        }
        kinds = ["callback", "bare", "peer"] if pinned else ["callback", "threads", "bare", "peer"]
        for i in range(args.rounds):
            order = kinds[i % len(kinds) :] + kinds[: i % len(kinds)]
            for what in order:
                if what == "callback":
                    runs[what].append(our_run(session, vtl.disk_lun, depth, blocks, args.seconds))
                elif what == "bare":
                    runs[what].append(
                        bare_loop(
                            "127.0.0.1",
                            port,
                            vtl.iqn,
                            vtl.disk_lun,
                            depth=depth,
                            blocks=blocks,
                            capacity=DISK_MB * 1024 * 1024 // BLOCK,
                            seconds=args.seconds,
                        )
                    )
                elif what == "threads":
                    iops = threaded_iops(url, depth, blocks, args.seconds)
                    runs[what].append((iops, float("nan")))
                else:
                    peer = peer_iops(url, depth, blocks, args.seconds, cpu=1 if pinned else None)
                    if peer is not None:
                        runs[what].append(peer)
        rows.append((label, blocks, runs))
    return rows


def _report(
    title: str, rows: list[tuple[str, int, dict[str, list[tuple[float, float]]]]], judge: bool
) -> None:
    goals = {"256 KiB QD4": 1.0, "4 KiB QD32": 0.9}
    print(title)
    for label, blocks, runs in rows:
        size = blocks * BLOCK
        med = {
            k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
            for k, v in runs.items()
            if v
        }

        def fig(iops: float, cpu: float, size: int = size) -> str:
            per = "" if cpu != cpu else f", CPU {cpu * 1e6:5.1f} us/command"  # nan: not measured
            return f"{iops:8.0f} IOPS {iops * size / 1e6:7.1f} MB/s{per}"

        theirs = med.get("peer")
        print(f"  {label}: iscsi-perf {fig(*theirs) if theirs else 'n/a'}")
        for what, name in (
            ("callback", "tapepath callback API"),
            ("threads", "tapepath execute_into, threads"),
            ("bare", "bare Python loop (reference)"),
        ):
            if what in med:
                ours = med[what]
                peer = theirs[0] if theirs else None
                print(f"    {name:31s} {fig(*ours)}  ratio {ratio(ours[0], peer)}")
        if theirs:
            best = max(v[0] for k, v in med.items() if k not in ("peer", "bare"))
            if judge and label in goals:
                verdict = "met" if best / theirs[0] >= goals[label] else "NOT met"
                bare = med.get("bare")
                ceiling = f"; bare Python loop {bare[0] / theirs[0]:.2f}" if bare else ""
                print(
                    f"    goal ratio >= {goals[label]}: {verdict} "
                    f"(best path {best / theirs[0]:.2f}{ceiling})"
                )


def main(argv: list[str]) -> int:
    """Run the benchmark; print figures and ratios. Returns 0 (figures, not pass/fail)."""
    parser = argparse.ArgumentParser(prog="bench_iscsi")
    parser.add_argument("--seconds", type=float, default=3.0, help="run time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure (median)")
    parser.add_argument(
        "--no-pin", action="store_true", help="skip the runs with target and initiator pinned"
    )
    parser.add_argument(
        "--no-qd1", dest="qd1", action="store_false", help="skip the queue depth 1 reads"
    )
    args = parser.parse_args(argv)
    if shutil.which("tgtd") is None and shutil.which("tgtd", path="/usr/sbin:/sbin") is None:
        print("tgtd is not installed (Debian package tgt): nothing to measure")
        return 0
    pin = (
        not args.no_pin and len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0)
    )
    mine = os.sched_getaffinity(0)
    with TgtdInstance() as tgt:
        vtl = tgt.configure_vtl(
            iqn="iqn.2026-11.org.tapepath:bench",
            drives=1,
            slots=4,
            cartridge_mb=4096,
            disk_mb=DISK_MB,
        )
        assert vtl.disk_lun is not None
        url = tgt.url(vtl.disk_lun)
        session = IscsiSession(
            ConnectOptions(host="127.0.0.1", port=tgt.port, target=vtl.iqn, nop_interval=None)
        )
        with contextlib.suppress(RuntimeError):  # the first read meets the unit attention
            our_iops(session, vtl.disk_lun, 1, 8, 0.2)
        warmed = warm_lun(session, vtl.disk_lun)
        shared = _measure(session, vtl, url, args, pinned=False)
        pinned = None
        if pin and tgt.pid is not None:
            pin_threads(tgt.pid, {0})
            pin_threads(os.getpid(), {1})
            try:
                pinned = _measure(session, vtl, url, args, pinned=True)
            finally:
                pin_threads(os.getpid(), mine)
                pin_threads(tgt.pid, mine)
        session.close()
        tape = tape_stream(tgt, vtl, args.seconds)
    print(
        f"iscsi read benchmark on tgtd (loopback): median of {args.rounds} runs of "
        f"{args.seconds:g} s each, order rotated; LUN read through first ({warmed:.1f} s)"
    )
    _report("shared CPUs (target and initiator on the same cores):", shared, judge=True)
    if pinned is not None:
        _report(
            "pinned: tgtd on CPU 0, the initiator on CPU 1 (as on two machines):", pinned, False
        )
    print(f"  tape WRITE(6) stream, 256 KiB records, QD1: {tape:.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
