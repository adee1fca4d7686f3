"""The pytest plugin of ``fuzz/run.py``: every hypothesis test runs N examples.

N comes from ``TAPEPATH_FUZZ_EXAMPLES`` (default 20,000, the ``long`` profile). Tests
that pin ``max_examples`` with their own ``@settings`` get N too: the plugin replaces
the settings hypothesis stored on each collected test (keeping the rest of them).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_ATTR = "_hypothesis_internal_use_settings"


def _examples() -> int:
    return int(os.environ.get("TAPEPATH_FUZZ_EXAMPLES", "20000"))


def pytest_configure(config: pytest.Config) -> None:
    """Register and load the ``fuzz`` profile (after tests/conftest.py loaded its own)."""
    settings.register_profile(
        "fuzz", max_examples=_examples(), deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile("fuzz")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every hypothesis test N examples, whatever its own @settings say."""
    n = _examples()
    for item in items:
        fn = getattr(item, "obj", None)
        fn = getattr(fn, "__func__", fn)
        current = getattr(fn, _ATTR, None)
        if isinstance(current, settings):
            setattr(
                fn,
                _ATTR,
                settings(
                    current,
                    max_examples=n,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                ),
            )
