"""The code in the guides runs and does what the guides say it does."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of a docs page, in order."""
    return [m["code"] for m in FENCE.finditer((DOCS / page).read_text(encoding="utf-8"))]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestQuickstart:
    """The quickstart's example against the virtual library."""

    def test_failover_example_prints_what_the_page_says(self, tmp_path: Path) -> None:
        """It runs, fails over, and the tape holds the two records the comment shows."""
        code = next(b for b in python_blocks("quickstart.md") if "VirtualLibrary" in b)
        (tmp_path / "example.py").write_text(code, encoding="utf-8")
        proc = run(["example.py"], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert "[b'record one', b'record two']" in lines
        assert "TapePosition(block=3, file=1" in proc.stdout
        assert "('sim://vtl/drive0?port=0', 'failed')" in proc.stdout
        assert any(line.startswith("slot 1 (element 0x1000, holds TP0001L8)") for line in lines)


class TestBackupApplicationGuide:
    """The pytest example of the 'testing a backup application' guide."""

    def test_example_tests_pass(self, tmp_path: Path) -> None:
        """Saved as test_nightly.py and run with pytest, all its tests pass."""
        (code,) = [
            b for b in python_blocks("howto/test-a-backup-application.md") if "def test_" in b
        ]
        (tmp_path / "test_nightly.py").write_text(code, encoding="utf-8")
        proc = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_nightly.py"], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(r"\b4 passed\b", proc.stdout), proc.stdout[-2000:]


# The pages of the docs site's own author (other pages are checked by their authors).
OWN_PAGES = [
    "index.md",
    "quickstart.md",
    "concepts.md",
    "limitations.md",
    "threat-model.md",
    "howto/bacula-bareos.md",
    "howto/test-a-backup-application.md",
    "howto/chap.md",
    "howto/configuration-file.md",
    "reference/index.md",
]
DOTTED = re.compile(r"`[^`]*?\b(tapepath(?:\.[A-Za-z_]\w*)+)")
NOT_PYTHON = {"tapepath.toml"}  # a file name, not a module


def resolves(dotted: str) -> bool:
    """True when ``dotted`` names an importable module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


class TestNamesInPages:
    """Every ``tapepath.…`` name the pages mention exists in the code."""

    def test_resolver_tells_names_apart(self) -> None:
        """The check itself: a real name resolves, a made-up one does not."""
        assert resolves("tapepath.multipath.register_handler")
        assert not resolves("tapepath.multipath.register_handlers")

    @pytest.mark.parametrize("page", [*OWN_PAGES, "../README.md"])
    def test_dotted_names_exist(self, page: str) -> None:
        """Each dotted name in backticks imports."""
        text = (DOCS / page).read_text(encoding="utf-8")
        names = set(DOTTED.findall(text)) - NOT_PYTHON
        missing = sorted(n for n in names if not resolves(n))
        assert not missing, f"{page} names what the code does not have: {missing}"
