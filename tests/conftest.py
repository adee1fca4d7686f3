"""Suite-wide configuration: the ``needs`` marker and hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.support.tools import require_tool

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply ``@pytest.mark.needs("tool", ...)``: skip, or fail under CI, when a tool is missing."""
    for mark in item.iter_markers(name="needs"):
        require_tool(*mark.args, why=str(mark.kwargs.get("why", "")))
