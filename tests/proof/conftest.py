"""The fault matrix's counts in pytest's terminal summary."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print cases, recovered transparently, typed ambiguity and other typed errors."""
    module = sys.modules.get("tests.proof.test_fault_matrix")
    tally = getattr(module, "TALLY", None)
    if not tally:
        return
    from tests.proof.judge import Verdict  # noqa: PLC0415

    terminalreporter.section("fault matrix")
    kinds = sorted({k for k, _v in tally})
    total = {v: sum(n for (_k, vv), n in tally.items() if vv is v) for v in Verdict}
    terminalreporter.write_line(
        f"{sum(total.values())} cases: " + ", ".join(f"{total[v]} {v.value}" for v in Verdict)
    )
    for k in kinds:
        row = ", ".join(f"{tally[(k, v)]} {v.value}" for v in Verdict if tally[(k, v)])
        terminalreporter.write_line(f"  {k}: {row}")
