"""Finding the system tools tests use, with the project's skip/fail rule.

Outside CI a missing tool skips only the tests that need it and says why; with
``CI=true`` a missing tool fails the test, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["in_ci", "missing", "require_tool"]

# Some tools live in sbin, which a non-root PATH may lack.
_EXTRA_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def in_ci() -> bool:
    """True when running under CI (``CI=true``)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def which(name: str) -> str | None:
    """Like shutil.which, also looking in the sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    path = os.pathsep.join(_EXTRA_DIRS)
    return shutil.which(name, path=path)


def missing(*names: str) -> list[str]:
    """The names among ``names`` that are not installed."""
    return [n for n in names if which(n) is None]


def require_tool(*names: str, why: str = "") -> None:
    """Skip (or, under CI, fail) the calling test unless every tool is installed."""
    gone = missing(*names)
    if not gone:
        return
    reason = f"missing system tool(s): {', '.join(gone)}" + (f" ({why})" if why else "")
    if in_ci():
        pytest.fail(f"CI=true and {reason}; scripts/bootstrap.sh --system installs them")
    pytest.skip(reason + "; run ./run test as root to install them")
