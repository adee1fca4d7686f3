"""TEST UNIT READY per second through SgTransport vs ``sg_turs -n N`` (sg3_utils, C).

Both run inside the same QEMU guest on the same /dev/sgN node (the changer, reached
through iSCSI from the guest's kernel to a tgtd on this machine), one after the other,
alternating, best of the rounds. The harness is tests/vm/harness.py (the VM tests use
it too). Goal: ratio SgTransport / sg_turs >= 0.8.

Three floors are printed beside it, bare Python loops with no transport at all: the
synchronous SG_IO ioctl; the write/poll/read of the asynchronous interface SgTransport
uses (so deadlines hold while the kernel holds a command); and that loop building one
Response per command, as the transport contract asks. Under QEMU's TCG emulation
(no KVM here) each Python object a command touches costs tens of microseconds, so
these floors show how much of the gap to sg_turs is left for the transport itself.

Usage: ``python -m benchmarks sg`` or ``python benchmarks/bench_sg.py [N [ROUNDS]]``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.vm.harness import HarnessUnavailable, boot_library

GOAL = 0.8


def _sg_turs_rate(output: str, n: int, wall: float, how: list[str]) -> float:
    """sg_turs --time's own "operations/sec" (no process start-up), else n / wall time."""
    m = re.search(r"([0-9.]+)\s*operations/sec", output)
    how.append("self-timed" if m else "wall time")
    return float(m.group(1)) if m else n / wall


def main(argv: list[str]) -> int:
    """Boot the VM, measure, print; return 1 when the goal is missed, 2 when no VM."""
    n = int(argv[0]) if argv else 5000
    rounds = int(argv[1]) if len(argv) > 1 else 4
    started = time.monotonic()
    try:
        with boot_library(replacement_timeout=5, drives=1) as g:
            booted = time.monotonic() - started
            paths = g.vm.call("list_paths")
            changer = next(
                p["path"] for p in paths if p["type"] == 8 and p["session"] == g.sessions[0]
            )
            g.vm.call("tur_loop", path=changer, n=200)  # warm up, clear the unit attention
            g.vm.call("sg_tool", argv=["sg_turs", "-n", "200", changer])
            ours: list[float] = []
            theirs: list[float] = []
            floor: list[float] = []
            async_floor: list[float] = []
            respond_floor: list[float] = []
            timing: list[str] = []
            for _ in range(rounds):
                res = g.vm.call("tur_loop", path=changer, n=n)
                if res["failed"]:
                    print(f"SgTransport: {res['failed']} of {n} commands failed")
                    return 1
                ours.append(n / res["seconds"])
                tool = g.vm.call("sg_tool", argv=["sg_turs", "-t", "-n", str(n), changer])
                if tool["rc"] != 0:
                    print(f"sg_turs failed: {tool['stdout']} {tool['stderr']}")
                    return 1
                out = tool["stdout"] + tool["stderr"]
                theirs.append(_sg_turs_rate(out, n, tool["seconds"], timing))
                bare = g.vm.call("ioctl_tur_loop", path=changer, n=n)
                floor.append(n / bare["seconds"])
                bare = g.vm.call("async_tur_loop", path=changer, n=n)
                async_floor.append(n / bare["seconds"])
                bare = g.vm.call("async_tur_loop", path=changer, n=n, respond=True)
                respond_floor.append(n / bare["seconds"])
            kernel = g.vm.hello.get("kernel")
    except HarnessUnavailable as e:
        print(f"no VM here: {e}")
        return 2
    best_ours, best_theirs = max(ours), max(theirs)
    ratio = best_ours / best_theirs
    print(f"guest kernel {kernel}, TCG, boot + login {booted:.1f} s; node {changer} (changer)")
    print(f"SgTransport TEST UNIT READY: {best_ours:8,.0f} commands/s (best of {rounds} x {n})")
    print(f"sg_turs -t -n {n}:          {best_theirs:8,.0f} commands/s (peer, C, {timing[-1]})")
    for label, rates in (
        ("bare SG_IO ioctl loop:     ", floor),
        ("bare write/poll/read loop: ", async_floor),
        ("  + one Response each:     ", respond_floor),
    ):
        print(
            f"{label} {max(rates):8,.0f} commands/s (Python, no transport; "
            f"{max(rates) / best_theirs:.2f} of sg_turs)"
        )
    print(
        "rounds (ours / sg_turs): "
        + ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(ours, theirs, strict=True))
    )
    print(f"ratio SgTransport/sg_turs: {ratio:.2f} (goal >= {GOAL})")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
