"""tapepath-mtx against the real mtx 1.3.12, byte for byte, on the same tgtd changer.

The real mtx runs in a QEMU guest (a real Linux kernel logged in to tgtd, the changer
as /dev/sgN; the guest runs this machine's /usr/sbin/mtx); tapepath-mtx runs here over
iSCSI to the same changer. The same sequence of calls (it ends where it started, so
both runs start from the same library state) must give the same stdout (the device text
of the status header aside), the same stderr and the same exit status.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.vm.harness import GuestLibrary, boot_library

pytestmark = [
    pytest.mark.vm,
    pytest.mark.needs("qemu-system-x86_64", "tgtd", "tgtadm", "busybox", "apt-get", "mtx"),
]

#: mtx calls (arguments after -f DEVICE); the library is back in its first state after.
SEQUENCE: tuple[tuple[str, ...], ...] = (
    ("status",),
    ("load", "1", "1"),
    ("status",),
    ("load", "2", "1"),
    ("transfer", "2", "3"),
    ("transfer", "2", "7"),
    ("load", "7", "0", "status"),
    ("unload", "7", "0"),
    ("transfer", "7", "2"),
    ("unload", "1"),
    ("unload", "1", "1"),
    ("nobarcode", "status"),
    ("first", "0"),
    ("next", "0"),
    ("previous", "0"),
    ("unload",),
    ("last", "0"),
    ("load",),
    ("load", "99"),
    ("transfer", "1"),
    ("next", "1"),
    ("unload", "1", "1"),
    ("previous", "1"),
    ("unload", "6", "1"),
    ("invert", "load", "3", "0"),
    ("unload", "3", "0"),
    ("position", "3"),
    ("exchange", "1", "7"),
    ("inventory",),
    ("erase",),
    ("transfer", "6", "9"),
    ("load", "5", "0"),
    ("next", "0"),
    ("status",),
    ("unload",),
    ("previous", "0"),
    ("unload",),
    ("last", "0"),
    ("next", "1"),
    ("unload", "1", "1"),
    ("first", "1", "status"),
    ("unload", "1", "1"),
    ("transfer", "9", "6"),
    ("load", "1", "0"),
    ("transfer", "2", "1"),
    ("status",),
    ("load", "3", "1"),
    ("transfer", "4", "3"),
    ("status",),
    ("unload", "7", "0"),
    ("transfer", "1", "2"),
    ("transfer", "7", "1"),
    ("unload", "8", "1"),
    ("transfer", "3", "4"),
    ("transfer", "8", "3"),
    ("eepos", "1", "transfer", "1", "7"),
    ("transfer", "7", "1"),
    ("inquiry",),
    ("eject",),
    ("eepos", "9", "status"),
    ("status", "bogus"),
    ("--version",),
    ("status",),
)


@pytest.fixture(scope="module")
def guest() -> Iterator[GuestLibrary]:
    """A guest logged in to a tgtd VTL through two portals."""
    with boot_library(drives=2) as g:
        yield g


def changer_node(g: GuestLibrary) -> str:
    """The guest's sg node of the changer through the first portal."""
    lun = g.vtl.changer_lun
    for p in g.vm.call("list_paths"):
        if p["session"] == g.sessions[0] and p["hctl"].endswith(f":{lun}"):
            return str(p["path"])
    raise AssertionError("no sg node for the changer")


def test_same_output_as_real_mtx(guest: GuestLibrary) -> None:
    """Every call of the sequence: same stdout, stderr and exit status as mtx 1.3.12."""
    node = changer_node(guest)
    real: list[tuple[int, str, str]] = []
    for args in SEQUENCE:
        r = guest.vm.sh("/usr/sbin/mtx", "-f", node, *args)
        real.append((r["rc"], r["stdout"], r["stderr"]))
    urls = ",".join(guest.tgt.url(guest.vtl.changer_lun, port=p) for p in guest.portals)
    ours: list[tuple[int, str, str]] = []
    for args in SEQUENCE:
        done = subprocess.run(
            [sys.executable, "-m", "tapepath.mtx", "-f", urls, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        header = f"  Storage Changer {urls}:"
        out = done.stdout.replace(header, f"  Storage Changer {node}:")
        ours.append((done.returncode, out, done.stderr))
    assert real[0] == real[-1], "the sequence must leave the library as it found it"
    for args, mine, theirs in zip(SEQUENCE, ours, real, strict=True):
        assert mine == theirs, (args, "\n".join(difflib.ndiff(list(theirs), list(mine))))
