"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (default: all of them).

Each ``benchmarks/bench_NAME.py`` is a standalone script with a ``main(argv)`` function
that prints its figures. Benchmarks are never part of the test suite.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _quiet_logs() -> None:
    """Show only warnings and errors from the library while benchmarks print figures."""
    import logging  # noqa: PLC0415

    import structlog  # noqa: PLC0415

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: list[str]) -> int:
    """Run the named benchmarks, or all, and return the worst exit status."""
    _quiet_logs()
    here = Path(__file__).parent
    names = sorted(
        m.name[6:] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    worst = 0
    for name in wanted:
        print(f"== benchmark {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        worst = max(worst, int(module.main([]) or 0))
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
