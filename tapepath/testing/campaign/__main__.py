"""``python -m tapepath.testing.campaign``: run a fault campaign and print its figures."""

from __future__ import annotations

import argparse
import logging
import sys
import time

import structlog

from tapepath.testing.campaign.report import Tally
from tapepath.testing.campaign.runner import run_campaign

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the campaign, print the tally.

    Returns:
        0 when every must-be-0 counter is 0, 1 otherwise.
    """
    p = argparse.ArgumentParser(
        prog="python -m tapepath.testing.campaign",
        description="Seeded fault campaign: moves, writes, filemarks and reads under faults.",
    )
    p.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    p.add_argument("--scenarios", type=int, default=1000, help="how many (default 1000)")
    p.add_argument(
        "--tgtd",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run one scenario in five on a private tgtd (default: when installed)",
    )
    p.add_argument("--json", action="store_true", help="print the counters as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log the library's events")
    args = p.parse_args(argv)
    if args.scenarios < 0:
        p.error("--scenarios must be >= 0")
    # A command line program may configure logging (the library never does): events
    # go to stderr, so --json output stays clean; -v shows them all.
    level = logging.DEBUG if args.verbose else logging.ERROR
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    start = time.monotonic()

    def progress(k: int, tally: Tally) -> None:
        if not args.json and (k + 1) % 100 == 0:
            print(f"... {k + 1} scenarios, {time.monotonic() - start:.0f} s", file=sys.stderr)

    tally = run_campaign(args.seed, args.scenarios, tgtd=args.tgtd, progress=progress)
    if args.json:
        print(tally.to_json())
    else:
        print(tally.to_text())
        print(f"{'wall time':<39}  {time.monotonic() - start:.1f} s")
    return 0 if tally.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
