"""pytest plugin of tapepath.testing: the ``virtual_library`` and ``fault_plan`` fixtures.

Installed through the ``pytest11`` entry point, so any project that has tapepath
installed can use the fixtures without a conftest::

    def test_backup_survives_a_cut(virtual_library, fault_plan):
        fault_plan.add(LinkDown(device="drive0", port=0, trigger=AtCommand(5)))
        run_my_backup(virtual_library.drive_urls(0))

Configure the library with a marker (keyword arguments of
:class:`~tapepath.testing.VirtualLibrary`)::

    @pytest.mark.virtual_library(drives=4, slots=40, move_time=2.0)

Unless the marker passes ``clock=``, the library runs on a
:class:`~tapepath.testing.VirtualClock`: robot moves, delays and black holes take no
real time. ``@pytest.mark.fault_plan(seed=7)`` seeds the plan.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tapepath.testing.faults import FaultPlan
    from tapepath.testing.library import VirtualLibrary

__all__ = ["fault_plan", "virtual_library"]

_counter = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's markers."""
    config.addinivalue_line(
        "markers",
        "virtual_library(**kwargs): arguments for the virtual_library fixture's VirtualLibrary",
    )
    config.addinivalue_line("markers", "fault_plan(seed=0): seed of the fault_plan fixture")


def _name_for(node_name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name)[:40].strip("-") or "vtl"
    return f"{base}-{next(_counter)}"


@pytest.fixture
def virtual_library(request: pytest.FixtureRequest) -> Iterator[VirtualLibrary]:
    """A fresh registered VirtualLibrary (virtual clock), unregistered after the test."""
    from tapepath.testing.clock import VirtualClock  # noqa: PLC0415  (plugin loads lazily)
    from tapepath.testing.library import VirtualLibrary  # noqa: PLC0415

    kwargs: dict[str, Any] = {}
    marker = request.node.get_closest_marker("virtual_library")
    if marker is not None:
        kwargs.update(marker.kwargs)
    kwargs.setdefault("clock", VirtualClock())
    name = kwargs.pop("name", None) or _name_for(request.node.name)
    lib = VirtualLibrary(name, **kwargs)
    try:
        yield lib
    finally:
        lib.close()


@pytest.fixture
def fault_plan(request: pytest.FixtureRequest, virtual_library: VirtualLibrary) -> FaultPlan:
    """An empty FaultPlan installed in ``virtual_library``; add faults to it."""
    from tapepath.testing.faults import FaultPlan  # noqa: PLC0415

    marker = request.node.get_closest_marker("fault_plan")
    seed = int(marker.kwargs.get("seed", 0)) if marker is not None else 0
    plan = FaultPlan(seed=seed)
    virtual_library.install(plan)
    return plan
