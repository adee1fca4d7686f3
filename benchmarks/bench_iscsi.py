"""The iscsi:// data path against libiscsi's iscsi-perf, on the same private tgtd.

Figures (each pair measured in the same run, on the same sparse disk LUN):

- sequential READ(16) of 256 KiB at queue depth 4: MB/s, tapepath vs iscsi-perf;
- sequential READ(16) of 4 KiB at queue depth 32: IOPS, tapepath vs iscsi-perf;
- a tape WRITE(6) stream of 256 KiB records to a tgtd tape LUN: MB/s (no peer).

Goals: ratio >= 1.0 at 256 KiB and >= 0.9 at 4 KiB. tgtd on loopback is the
bottleneck for both initiators, so the ratios say whether tapepath keeps up.
MB here is 10**6 bytes; both sides are computed from their IOPS the same way.

Usage: ``python -m benchmarks iscsi`` or ``python benchmarks/bench_iscsi.py
[--seconds S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

from tapepath.iscsi.connection import ConnectOptions
from tapepath.iscsi.driver import IscsiSession
from tapepath.iscsi.session import Task
from tapepath.scsi.changer import MoveMedium
from tapepath.scsi.tape import Rewind, Write6
from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tapepath.transport.iscsi import IscsiTransport

DISK_MB = 1024
BLOCK = 512


def read16(lba: int, blocks: int) -> bytes:
    """A READ(16) CDB."""
    return bytes([0x88, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)


def peer_iops(url: str, depth: int, blocks: int, seconds: float) -> float | None:
    """iscsi-perf's average IOPS for sequential reads, or None when it is missing."""
    tool = shutil.which("iscsi-perf")
    if tool is None:
        return None
    cmd = [tool, "-m", str(depth), "-b", str(blocks), "-t", str(max(1, round(seconds))), url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = re.findall(r"iops average (\d+)", res.stdout)
    if res.returncode != 0 or not found:
        print(f"  iscsi-perf failed ({res.returncode}): {res.stderr.strip()[-200:]}")
        return None
    return float(found[-1])


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


def main(argv: list[str]) -> int:
    """Run the benchmark; print figures and ratios. Returns 0 (figures, not pass/fail)."""
    parser = argparse.ArgumentParser(prog="bench_iscsi")
    parser.add_argument("--seconds", type=float, default=3.0, help="run time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure (median)")
    args = parser.parse_args(argv)
    if shutil.which("tgtd") is None and shutil.which("tgtd", path="/usr/sbin:/sbin") is None:
        print("tgtd is not installed (Debian package tgt): nothing to measure")
        return 0
    s = args.seconds
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
        our_iops(session, vtl.disk_lun, 4, 8, 0.2)
        rows = []
        for label, depth, blocks in (("256 KiB QD4", 4, 512), ("4 KiB QD32", 32, 8)):
            # rotate the order of the three measurements each round and keep medians,
            # so other load on the machine hits every initiator alike
            runs: dict[str, list[float]] = {"callback": [], "threads": [], "peer": []}
            for i in range(args.rounds):
                order = ["callback", "threads", "peer"]
                order = order[i % 3 :] + order[: i % 3]
                for what in order:
                    if what == "callback":
                        value = our_iops(session, vtl.disk_lun, depth, blocks, s)
                    elif what == "threads":
                        value = threaded_iops(url, depth, blocks, s)
                    else:
                        peer = peer_iops(url, depth, blocks, s)
                        if peer is None:
                            continue
                        value = peer
                    runs[what].append(value)
            med = {k: statistics.median(v) if v else None for k, v in runs.items()}
            rows.append((label, blocks, med))
        session.close()
        tape = tape_stream(tgt, vtl, s)
    print(
        f"iscsi read benchmark on tgtd (loopback): median of {args.rounds} runs of {s:g} s"
        " each, order rotated"
    )
    goals = {"256 KiB QD4": 1.0, "4 KiB QD32": 0.9}
    for label, blocks, med in rows:
        size = blocks * BLOCK
        theirs = med["peer"]

        def fig(iops: float | None, size: int = size) -> str:
            return f"{iops:8.0f} IOPS {iops * size / 1e6:7.1f} MB/s" if iops else "n/a"

        print(f"  {label}: iscsi-perf {fig(theirs)}")
        for what, name in (("callback", "callback API"), ("threads", "execute_into, threads")):
            ours = med[what]
            assert ours is not None
            print(f"    tapepath {name:22s} {fig(ours)}  ratio {ratio(ours, theirs)}")
        best = max(v for k, v in med.items() if k != "peer" and v is not None)
        if theirs:
            verdict = "met" if best / theirs >= goals[label] else "NOT met"
            print(f"    goal ratio >= {goals[label]}: {verdict} (best path {best / theirs:.2f})")
    print(f"  tape WRITE(6) stream, 256 KiB records, QD1: {tape:.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
