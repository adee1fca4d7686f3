"""Exit-code families and the CLI's logging setup (levels, formats, redaction)."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from tapepath.cli.errors import CliFailure, ExitCode, classify
from tapepath.cli.events import event_json, render_event
from tapepath.cli.logsetup import configure_logging, level_for, redact_event
from tapepath.errors import (
    AmbiguousMoveError,
    AuthenticationError,
    CheckConditionError,
    ConfigError,
    ElementFullError,
    NoPathError,
    PathFailureError,
    ReservationConflictError,
    TapepathError,
    UnknownElementError,
)


class TestClassify:
    """Each error family has its own exit code."""

    @pytest.mark.parametrize(
        ("exc", "family", "code"),
        [
            (ConfigError("bad key"), "configuration", ExitCode.CONFIG),
            (NoPathError("none left"), "no path", ExitCode.NO_PATH),
            (PathFailureError("cut"), "no path", ExitCode.NO_PATH),
            (AuthenticationError("chap"), "no path", ExitCode.NO_PATH),
            (AmbiguousMoveError("robot?"), "ambiguity", ExitCode.AMBIGUITY),
            (CheckConditionError("refused"), "device error", ExitCode.DEVICE),
            (ElementFullError("full"), "device error", ExitCode.DEVICE),
            (ReservationConflictError("reserved"), "device error", ExitCode.DEVICE),
            (UnknownElementError("slot 99"), "not found", ExitCode.NOT_FOUND),
            (TapepathError("other"), "error", ExitCode.INTERNAL),
            (ValueError("bad value"), "usage", ExitCode.USAGE),
            (RuntimeError("bug"), "internal error", ExitCode.INTERNAL),
        ],
    )
    def test_family(self, exc: BaseException, family: str, code: ExitCode) -> None:
        """The family name and the exit code of each kind of error."""
        f = classify(exc)
        assert (f.family, f.code) == (family, code)

    def test_codes_are_distinct(self) -> None:
        """No two outcomes share an exit code."""
        values = [int(c) for c in ExitCode]
        assert len(values) == len(set(values))

    def test_message_is_one_redacted_line(self) -> None:
        """Newlines are folded and passwords removed."""
        f = classify(NoPathError("iscsi://u%pw123@h/iqn.x:y/1\nno path"))
        assert "\n" not in f.message
        assert "pw123" not in f.message

    def test_own_failure_passes(self) -> None:
        """A CliFailure is its own classification."""
        mine = CliFailure("verification", "x", ExitCode.VERIFY)
        assert classify(mine) is mine


class TestLevels:
    """-v/-q counts map to levels."""

    def test_table(self) -> None:
        """Warnings by default, -v info, -vv debug, -q errors, -qq nothing."""
        assert level_for(0, 0) == logging.WARNING
        assert level_for(1, 0) == logging.INFO
        assert level_for(3, 0) == logging.DEBUG
        assert level_for(0, 1) == logging.ERROR
        assert level_for(0, 2) > logging.CRITICAL


class TestConfigure:
    """configure_logging writes filtered, redacted lines and feeds the sink everything."""

    def teardown_method(self) -> None:
        """Put structlog's defaults back."""
        structlog.reset_defaults()

    def test_json_and_filter_and_sink(self) -> None:
        """Below the level nothing is written, but the sink sees it; secrets are gone."""
        out = io.StringIO()
        seen: list[dict[str, object]] = []
        configure_logging(level="warning", fmt="json", stream=out, sink=seen.append)
        log = structlog.get_logger("tapepath.test")
        log.info("quiet_event", n=1)
        log.warning("loud_event", url="iscsi://u%hunter2@h/iqn.x:y/1?target_password=abc")
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["event"] for line in lines] == ["loud_event"]
        assert "hunter2" not in out.getvalue()
        assert "abc" not in lines[0]["url"]
        assert [e["event"] for e in seen] == ["quiet_event", "loud_event"]

    def test_bad_format(self) -> None:
        """An unknown format or level is a ValueError."""
        with pytest.raises(ValueError, match="format"):
            configure_logging(fmt="xml")
        with pytest.raises(ValueError, match="level"):
            configure_logging(level="chatty")

    def test_redact_event(self) -> None:
        """Every string value is redacted."""
        ev = redact_event({"path": "iscsi://a%b@h/x/1", "n": 3})
        assert ev == {"path": "iscsi://a%***@h/x/1", "n": 3}


class TestRender:
    """Event lines for people and JSON for scripts."""

    def test_path_state_changed(self) -> None:
        """A state change reads as 'path URL: old -> new (reason)'."""
        line = render_event(
            {
                "event": "path_state_changed",
                "path": "sim://lib/changer?port=0",
                "old": "active",
                "new": "failed",
                "reason": "link_lost",
            }
        )
        assert line == "path lib/changer?port=0: active -> failed (link_lost)"

    def test_unknown_event_and_json(self) -> None:
        """Other events show their fields; JSON keeps numbers and redacts text."""
        assert render_event({"event": "odd_thing", "b": 2, "a": "x"}) == "odd thing a=x b=2"
        assert event_json({"event": "e", "n": 1, "url": "iscsi://u%p@h/x/1"}) == {
            "event": "e",
            "n": 1,
            "url": "iscsi://u%***@h/x/1",
        }
