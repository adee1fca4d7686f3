"""The session-wide VM: booted once, shared by every test in tests/vm/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tools import in_ci
from tests.vm.harness import GuestLibrary, HarnessUnavailable, boot_library

VM_TOOLS = ("qemu-system-x86_64", "tgtd", "tgtadm", "tgtimg", "busybox", "apt-get", "cpio")


@pytest.fixture(scope="session")
def guest() -> Iterator[GuestLibrary]:
    """A guest logged in to a tgtd VTL (changer, 2 drives, a disk) through two portals."""
    try:
        cm = boot_library(replacement_timeout=5, drives=2, disk_mb=8)
        lib = cm.__enter__()
    except HarnessUnavailable as e:
        if in_ci():
            pytest.fail(f"CI=true and the VM harness cannot work: {e}")
        pytest.skip(f"the VM harness cannot work here: {e}")
    try:
        yield lib
    finally:
        cm.__exit__(None, None, None)
