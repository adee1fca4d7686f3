"""Every script in examples/ runs against the virtual library and does what it says."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestScripts:
    """The runnable examples succeed and report the failover they went through."""

    def test_every_example_is_covered(self) -> None:
        """No example escapes this file."""
        names = sorted(p.stem for p in EXAMPLES.glob("*.py"))
        assert names == ["robot_failover", "tape_write_failover", "test_backup_script"]

    def test_robot_failover(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The moves finish on control path 1 after path 0 is cut."""
        assert _load("robot_failover").main([]) == 0
        out = capsys.readouterr().out
        assert "loaded TP0001L8 from slot 1 into drive 0" in out
        assert "transferred slot 1 to slot 24" in out
        assert "changer?port=0 failed" in out
        assert "active control path now 1" in out

    def test_tape_write_failover(self, capsys: pytest.CaptureFixture[str]) -> None:
        """All records read back after drive port 0 is cut mid-stream."""
        module = _load("tape_write_failover")
        assert module.main([]) == 0
        out = capsys.readouterr().out
        assert f"read back {len(module.RECORDS)} records intact" in out
        assert "drive0?port=0 failed" in out
        assert "faults fired: 1" in out

    def test_backup_script_tests_pass(self) -> None:
        """The example test module passes under pytest, with the installed fixtures."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(EXAMPLES / "test_backup_script.py"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=EXAMPLES.parent,
        )
        assert result.returncode == 0, result.stdout[-3000:]
        assert "4 passed" in result.stdout
