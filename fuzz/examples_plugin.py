"""A pytest plugin for ``fuzz/run.py --examples N``: a profile with N examples per test."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def pytest_configure(config: object) -> None:
    """Register and load the ``fuzz`` profile (after tests/conftest.py loaded its own)."""
    n = int(os.environ.get("TAPEPATH_FUZZ_EXAMPLES", "20000"))
    settings.register_profile(
        "fuzz", max_examples=n, deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile("fuzz")
