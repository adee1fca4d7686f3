"""The long fuzz run: every parser's hypothesis tests with many more examples.

Runs the pytest node ids of ``tests/reliability/test_fuzz_parsers.FUZZ_TARGETS`` with
20,000 examples per test (the ``long`` profile's count; ``--examples`` changes it, and
it applies even to tests that pin their own ``max_examples``) and hypothesis's
statistics, then prints one line per test (examples tried, time) and the totals.
Exit status: pytest's (0 when nothing failed).

Usage::

    ./run fuzz                         # or: .venv/bin/python fuzz/run.py
    .venv/bin/python fuzz/run.py --examples 2000 --family sense
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TESTS_LINE = re.compile(r"^(?P<node>\S+::\S+):\s*$")
_COUNTS = re.compile(r"(?P<p>\d+) passing, (?P<f>\d+) failing, and (?P<i>\d+) invalid")
_PHASE = re.compile(r"during (?P<phase>\w+) phase \((?P<secs>[\d.]+) seconds\)")


def _targets(families: list[str]) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from tests.reliability.test_fuzz_parsers import FUZZ_TARGETS  # noqa: PLC0415

    chosen = FUZZ_TARGETS
    if families:
        chosen = {k: v for k, v in FUZZ_TARGETS.items() if any(f in k for f in families)}
        if not chosen:
            raise SystemExit(f"no family matches {families}; known: {list(FUZZ_TARGETS)}")
    return sorted({n for nodes in chosen.values() for n in nodes})


def _summarise(output: str) -> tuple[int, int, list[str]]:
    """(passing, failing, per-test lines) from hypothesis's statistics output."""
    passing = failing = 0
    per: dict[str, list[float]] = {}
    current = ""
    for line in output.splitlines():
        m = _TESTS_LINE.match(line.strip())
        if m:
            current = m.group("node")
            per.setdefault(current, [0, 0, 0.0])
            continue
        ph = _PHASE.search(line)
        if ph and current:
            per[current][2] += float(ph.group("secs"))
            continue
        c = _COUNTS.search(line)
        if c and current:
            per[current][0] += int(c.group("p"))
            per[current][1] += int(c.group("f"))
    lines = []
    for node, (p, f, secs) in per.items():
        passing += int(p)
        failing += int(f)
        lines.append(f"{int(p):>8} passing {int(f):>3} failing {secs:>7.1f} s  {node}")
    return passing, failing, lines


def main(argv: list[str] | None = None) -> int:
    """Run the long fuzz session and print its figures."""
    p = argparse.ArgumentParser(prog="fuzz/run.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--examples",
        type=int,
        default=None,
        help="examples per test (default: long profile, 20,000)",
    )
    p.add_argument("--family", action="append", default=[], help="only these parser families")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = p.parse_args(argv)
    nodes = _targets(args.family)
    env = dict(os.environ, HYPOTHESIS_PROFILE="long")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
        "-o",
        "addopts=",
        *nodes,
    ]
    if args.seed is not None:
        cmd.append(f"--hypothesis-seed={args.seed}")
    env["TAPEPATH_FUZZ_EXAMPLES"] = str(args.examples or 20000)
    cmd += ["-p", "fuzz.examples_plugin"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    passing, failing, lines = _summarise(proc.stdout)
    print("\n".join(lines))
    tail = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no pytest output)"]
    print(f"tests: {len(nodes)} node ids; pytest: {tail[0]}")
    print(f"examples tried: {passing + failing} ({passing} passing, {failing} failing)")
    print(f"wall time: {took:.0f} s")
    if proc.returncode:  # the failures (falsifying examples), not the statistics
        out = proc.stdout
        start = out.find("= FAILURES =")
        end = out.find("= Hypothesis Statistics =")
        section = out[max(start, 0) : end if end > start else None]
        print(section[-8000:], proc.stderr[-2000:], sep="\n")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
