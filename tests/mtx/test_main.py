"""tapepath-mtx's entry point: stdout is mtx's alone; tapepath's logs only on request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from tapepath.mtx import main
from tapepath.testing import VirtualLibrary


@pytest.fixture
def vl() -> Iterator[VirtualLibrary]:
    """A small library; structlog's defaults are put back afterwards."""
    with VirtualLibrary("mtx-main", slots=4, import_export=0) as lib:
        yield lib
    structlog.reset_defaults()


class TestMain:
    """main() configures logging from $TAPEPATH_LOG and runs the command line."""

    def test_silent_by_default(
        self,
        vl: VirtualLibrary,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Without TAPEPATH_LOG nothing but mtx's output is written."""
        monkeypatch.delenv("TAPEPATH_LOG", raising=False)
        assert main(["-f", ",".join(vl.changer_urls()), "status"]) == 0
        got = capsys.readouterr()
        assert got.err == ""
        assert got.out.startswith("  Storage Changer ")
        assert got.out.count("\n") == 1 + 2 + 4

    def test_logs_on_request(
        self,
        vl: VirtualLibrary,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """TAPEPATH_LOG=info with TAPEPATH_LOG_FORMAT=json: JSON events on stderr only."""
        monkeypatch.setenv("TAPEPATH_LOG", "info")
        monkeypatch.setenv("TAPEPATH_LOG_FORMAT", "json")
        assert main(["-f", ",".join(vl.changer_urls()), "status"]) == 0
        got = capsys.readouterr()
        events = [json.loads(line)["event"] for line in got.err.splitlines()]
        assert "path_added" in events
        assert got.out.startswith("  Storage Changer ")

    def test_usage_exit_status(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A usage error exits 1 with the usage on stderr."""
        assert main(["-h"]) == 1
        assert capsys.readouterr().err.startswith("Usage:\n\tmtx --version\n")
