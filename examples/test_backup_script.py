"""Unit tests of a backup script, run against tapepath's virtual library.

The script (``backup`` below) loads a cartridge by barcode, appends each file as
its own tape file (records, then a filemark) and puts the cartridge back. The tests
use the ``virtual_library`` and ``fault_plan`` fixtures that come with tapepath::

    pytest examples/test_backup_script.py
"""

from __future__ import annotations

import tapepath
from tapepath.testing import AtCommand, ControlPathFailure, FaultPlan, LinkDown, VirtualLibrary

RECORD = 4096


def backup(changer: list[str], drive_paths: list[str], barcode: str, files: list[bytes]) -> int:
    """Write ``files`` to the cartridge ``barcode`` in drive 0; return its end block."""
    with tapepath.open_library(changer) as lib, tapepath.open_drive(drive_paths) as drive:
        lib.move(barcode, lib.inventory().drive(0))
        drive.space(0, "eod")
        for data in files:
            for i in range(0, len(data), RECORD):
                drive.write(data[i : i + RECORD])
            drive.write_filemarks(1)
        end = drive.position().block
        drive.unload()
        lib.unload(0)
    assert end is not None
    return end


def restore(drive: tapepath.TapeDrive, file_number: int) -> bytes:
    """Read tape file ``file_number`` (from 0) back."""
    drive.rewind()
    if file_number:
        drive.space(file_number, "filemarks")
    out = bytearray()
    while chunk := drive.read(RECORD):
        out += chunk
    return bytes(out)


class TestBackup:
    """The backup script writes what it is given, once, and puts the cartridge back."""

    def test_two_files(self, virtual_library: VirtualLibrary) -> None:
        """Two files become two tape files and the cartridge goes home."""
        lib = virtual_library
        files = [b"a" * 10000, b"b" * 5000]
        end = backup(lib.changer_urls(), lib.drive_urls(0), "TP0002L8", files)
        assert lib.where("TP0002L8") == lib.slot_address(1)
        tape = lib.cartridge("TP0002L8").image
        assert [b"".join(f) for f in tape.files()][:2] == files
        assert end == len(tape.objects)

    def test_appends(self, virtual_library: VirtualLibrary) -> None:
        """A second run appends after the first."""
        lib = virtual_library
        backup(lib.changer_urls(), lib.drive_urls(0), "TP0003L8", [b"monday"])
        backup(lib.changer_urls(), lib.drive_urls(0), "TP0003L8", [b"tuesday"])
        with (
            tapepath.open_library(lib.changer_urls()) as robot,
            tapepath.open_drive(lib.drive_urls(0)) as drive,
        ):
            robot.move("TP0003L8", lib.drive_address(0))
            assert restore(drive, 0) == b"monday"
            assert restore(drive, 1) == b"tuesday"


class TestBackupFailover:
    """The script needs no failover code of its own."""

    def test_drive_port_cut(self, virtual_library: VirtualLibrary, fault_plan: FaultPlan) -> None:
        """A drive port dies mid-backup; the tape still holds every record once."""
        lib = virtual_library
        fault_plan.add(LinkDown(device="drive0", port=0, trigger=AtCommand(12)))
        data = bytes(range(256)) * 100
        backup(lib.changer_urls(), lib.drive_urls(0), "TP0004L8", [data])
        assert fault_plan.fired
        assert b"".join(lib.cartridge("TP0004L8").image.files()[0]) == data

    def test_control_path_lost(
        self, virtual_library: VirtualLibrary, fault_plan: FaultPlan
    ) -> None:
        """The library's active control path fails; the robot work finishes on the other."""
        lib = virtual_library
        fault_plan.add(ControlPathFailure(device="changer", drive_too=False, trigger=AtCommand(6)))
        backup(lib.changer_urls(), lib.drive_urls(0), "TP0005L8", [b"payload"])
        assert fault_plan.fired
        assert lib.where("TP0005L8") == lib.slot_address(4)
