"""Fixtures around a private tgtd: ``tgtd_vtl`` is a started instance with a VTL.

The integrator may move ``tgtd_vtl`` to a shared conftest; it depends on nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tapepath.testing.tgtd import TgtdInstance, VtlLayout
from tests.support.tools import require_tool


@pytest.fixture
def tgtd_vtl() -> Iterator[tuple[TgtdInstance, VtlLayout]]:
    """A running tgtd with a VTL (changer, 2 drives, 8 slots, a 16 MiB disk) and 2 portals."""
    require_tool("tgtd", "tgtadm", "tgtimg")
    with TgtdInstance() as tgt:
        layout = tgt.configure_vtl(drives=2, slots=8, disk_mb=16)
        tgt.add_portal()
        yield tgt, layout
