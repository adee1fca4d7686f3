"""tapepath monitor (live path events) and tapepath bench (the benchmarks package)."""

from __future__ import annotations

import json
from pathlib import Path

from tapepath.cli.errors import ExitCode
from tapepath.testing import VirtualLibrary
from tapepath.testing.faults import AtTime, FaultPlan, LinkDown
from tests.cli.conftest import Run


def fast_config(tmp_path: Path) -> Path:
    """A configuration whose path checker runs every 0.1 s."""
    cfg = tmp_path / "fast.toml"
    cfg.write_text("[defaults]\npolling_interval = 0.1\n")
    return cfg


class TestMonitor:
    """monitor shows path events as the checker finds them, until --duration."""

    def test_cut_path_is_reported(self, run: Run, vl: VirtualLibrary, tmp_path: Path) -> None:
        """A link cut 0.3 s in is reported as the active path going to failed."""
        vl.install(FaultPlan().add(LinkDown(device="changer", port=0, trigger=AtTime(0.3))))
        dev = ",".join(vl.changer_urls())
        r = run("monitor", "--duration", "2.0", "--config", str(fast_config(tmp_path)), "-d", dev)
        assert r.exit_code == 0, r.stderr
        assert f"path {vl.name}/changer?port=0: active -> failed" in r.stdout
        assert "watching 2 path(s)" in r.stdout

    def test_json_lines(self, run: Run, vl: VirtualLibrary, tmp_path: Path) -> None:
        """With --json each event is one JSON object with its event name."""
        vl.install(FaultPlan().add(LinkDown(device="changer", port=0, trigger=AtTime(0.2))))
        dev = ",".join(vl.changer_urls())
        r = run(
            "--json", "monitor", "--duration", "2.0", "--config", str(fast_config(tmp_path)),
            "-d", dev,
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        events = [json.loads(line) for line in r.stdout.splitlines()]
        changes = [e for e in events if e["event"] == "path_state_changed"]
        assert any(e["new"] == "failed" and e["path"].endswith("port=0") for e in changes)


class TestBench:
    """bench runs the benchmarks package."""

    def test_unknown_benchmark(self, run: Run) -> None:
        """An unknown name: the package's own refusal and exit status 2."""
        r = run("bench", "no-such-benchmark")
        assert r.exit_code == ExitCode.USAGE

    def test_unknown_benchmark_json(self, run: Run) -> None:
        """--json wraps the package's output and exit status in one document."""
        r = run("--json", "bench", "no-such-benchmark")
        assert r.exit_code == ExitCode.USAGE
        doc = json.loads(r.stdout)
        assert doc["exit_code"] == 2
        assert doc["benchmarks"] == ["no-such-benchmark"]
        assert "unknown benchmark" in doc["output"]
