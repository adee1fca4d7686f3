"""Fixtures of the application API tests: a Library and a TapeDrive on a VirtualLibrary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tapepath
from tapepath.testing import VirtualLibrary


@pytest.fixture
def library(virtual_library: VirtualLibrary) -> Iterator[tapepath.Library]:
    """The virtual library's changer through both control paths (no background monitor)."""
    with tapepath.open_library(virtual_library.changer_urls(), monitor=False) as lib:
        yield lib


@pytest.fixture
def drive(virtual_library: VirtualLibrary) -> Iterator[tapepath.TapeDrive]:
    """Drive 0 of the virtual library through both its ports, a cartridge loaded."""
    virtual_library.insert(virtual_library.drive_address(0), "DR0001L8")
    with tapepath.open_drive(virtual_library.drive_urls(0), monitor=False) as d:
        yield d
