"""tapepath demo: the scenario runs, shows events, and its verification can fail."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import structlog

from tapepath.cli.demo_run import DemoReport, EventCollector, run_demo
from tapepath.cli.errors import ExitCode
from tests.cli.conftest import Run


class TestDemoCommand:
    """The command's output and exit code."""

    def test_text(self, run: Run) -> None:
        """The events come as they happen, then a verified summary; exit 0."""
        r = run("demo", "--records", "40")
        assert r.exit_code == 0, r.stdout + r.stderr
        out = r.stdout
        assert "FAULT: control path 0" in out
        assert "FAULT: link of drive0 port 0 is DOWN" in out
        assert "active -> failed" in out
        assert out.index("FAULT: control path 0") < out.index("summary")
        assert "duplicates on tape     0" in out
        assert "verified: no command lost or sent twice" in out

    def test_json(self, run: Run) -> None:
        """--json gives one object per line: steps, events, then the summary."""
        r = run("demo", "--json", "--records", "20")
        assert r.exit_code == 0, r.stderr
        docs = [json.loads(line) for line in r.stdout.splitlines()]
        kinds = {d["type"] for d in docs}
        assert kinds == {"step", "event", "summary"}
        summary = docs[-1]
        assert summary["type"] == "summary"
        assert summary["ok"] is True
        assert summary["duplicates"] == 0
        assert summary["records_read"] == summary["records_written"] == 20
        assert summary["path_failures"] >= 2
        assert summary["commands_recovered"] >= 2
        assert summary["locations_ok"] is True

    def test_failed_verification_exits_8(self, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the check fails, the exit code is 8 and the summary says so."""

        def broken(collector: EventCollector, **_kw: object) -> DemoReport:
            # a report with a duplicated record
            return DemoReport(
                library="x",
                records_written=2,
                filemarks_written=1,
                records_read=3,
                duplicates=1,
                missing=0,
                out_of_order=True,
                corrupt=0,
                locations_expected={"A": 1},
                locations_found={"A": 1},
                path_failures=2,
                commands_recovered=2,
                recovery_seconds=0.0,
                elapsed=0.0,
            )

        monkeypatch.setattr("tapepath.cli.demo.run_demo", broken)
        r = run("demo")
        assert r.exit_code == ExitCode.VERIFY
        assert "VERIFICATION FAILED" in r.stdout


class TestReport:
    """The report's verdict."""

    def test_direct_run_records_everything(self) -> None:
        """run_demo on its own: the tape holds each record once, in order."""
        collector = EventCollector()
        structlog.configure(processors=[_to(collector)])
        report = run_demo(collector, records=10, filemark_every=4, name="demo-direct")
        assert report.ok, report
        assert report.filemarks_written == 3
        assert report.records_read == 10

    def test_location_mismatch_is_not_ok(self) -> None:
        """A cartridge in the wrong place fails the verdict."""
        r = DemoReport(
            library="x",
            records_written=1,
            filemarks_written=1,
            records_read=1,
            duplicates=0,
            missing=0,
            out_of_order=False,
            corrupt=0,
            locations_expected={"A": 1},
            locations_found={"A": 2},
            path_failures=2,
            commands_recovered=2,
            recovery_seconds=0.0,
            elapsed=0.0,
        )
        assert not r.locations_ok
        assert not r.ok


def _to(collector: EventCollector) -> Callable[[object, str, dict[str, object]], None]:
    """A structlog processor that hands every event to the collector and drops it."""

    def proc(_l: object, _n: str, ev: dict[str, object]) -> None:
        collector(dict(ev))
        raise structlog.DropEvent

    return proc
