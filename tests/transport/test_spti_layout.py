"""The SPTI ctypes structures against the real Windows headers (mingw-w64's ntddscsi.h).

The test writes a C file of ``_Static_assert``s holding the sizes and offsets the Python
structures have and compiles it for the target: it compiles only when the layouts agree.
"""

from __future__ import annotations

import ctypes
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapepath.transport import spti_struct as ss

C_DIR = Path(__file__).parent / "c"

X64 = "x86_64-w64-mingw32-gcc"
X86 = "i686-w64-mingw32-gcc"


def members(cls: type[ctypes.Structure], prefix: str = "") -> Iterator[tuple[str, int, int]]:
    """(C member designator, offset, size) of every field, nested structures included."""
    for name, ctype in cls._fields_:
        desc = getattr(cls, name)
        yield prefix + name, desc.offset, desc.size
        if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
            for sub, off, size in members(ctype, f"{prefix}{name}."):
                yield sub, desc.offset + off, size


def asserts(py: type[ctypes.Structure], c_type: str) -> list[str]:
    """Static asserts of the size and every member's offset and size of ``py`` as ``c_type``."""
    out = [f'_Static_assert(sizeof({c_type}) == {ctypes.sizeof(py)}, "sizeof {c_type}");']
    for member, off, size in members(py):
        out.append(
            f'_Static_assert(offsetof({c_type}, {member}) == {off}, "offsetof {c_type}.{member}");'
        )
        out.append(
            f"_Static_assert(TAPEPATH_FIELD_SIZE({c_type}, {member}) == {size}, "
            f'"sizeof {c_type}.{member}");'
        )
    return out


def layout_source(sptd: type[ctypes.Structure], block: type[ctypes.Structure]) -> str:
    """The whole C file for one target."""
    lines = ['#include "spti_layout.h"']
    lines += asserts(sptd, "SCSI_PASS_THROUGH_DIRECT")
    lines += asserts(block, "TAPEPATH_SPTD_WITH_SENSE")
    lines += asserts(ss.IoScsiCapabilities, "IO_SCSI_CAPABILITIES")
    lines += asserts(ss.ScsiAddressStruct, "SCSI_ADDRESS")
    for name in (
        "IOCTL_SCSI_PASS_THROUGH_DIRECT",
        "IOCTL_SCSI_GET_CAPABILITIES",
        "IOCTL_SCSI_GET_ADDRESS",
        "SCSI_IOCTL_DATA_OUT",
        "SCSI_IOCTL_DATA_IN",
        "SCSI_IOCTL_DATA_UNSPECIFIED",
    ):
        lines.append(f'_Static_assert({name} == {getattr(ss, name):#x}, "{name}");')
    return "\n".join(lines) + "\n"


def compile_c(compiler: str, source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Compile ``source`` (object only) with the spti_layout.h directory on the path."""
    src = tmp_path / "spti_layout_check.c"
    src.write_text(source)
    return subprocess.run(
        [
            compiler,
            f"-DTAPEPATH_SENSE_MAX={ss.SENSE_MAX}",
            "-I",
            str(C_DIR),
            "-c",
            "-o",
            str(tmp_path / "spti_layout_check.o"),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


class TestLayoutAgainstHeaders:
    """The Python layouts compile as static asserts against ntddscsi.h."""

    @pytest.mark.needs(X64)
    def test_x64(self, tmp_path: Path) -> None:
        """The 64-bit structures match the x86_64 mingw-w64 headers."""
        proc = compile_c(
            X64, layout_source(ss.ScsiPassThroughDirect64, ss.SptdWithSense64), tmp_path
        )
        assert proc.returncode == 0, proc.stderr

    @pytest.mark.needs(X86)
    def test_x86(self, tmp_path: Path) -> None:
        """The 32-bit structures match the i686 mingw-w64 headers."""
        proc = compile_c(
            X86, layout_source(ss.ScsiPassThroughDirect32, ss.SptdWithSense32), tmp_path
        )
        assert proc.returncode == 0, proc.stderr

    @pytest.mark.needs(X64)
    def test_check_catches_a_wrong_layout(self, tmp_path: Path) -> None:
        """The 32-bit layout asserted against the 64-bit header fails to compile."""
        proc = compile_c(
            X64, layout_source(ss.ScsiPassThroughDirect32, ss.SptdWithSense32), tmp_path
        )
        assert proc.returncode != 0
        assert "offsetof SCSI_PASS_THROUGH_DIRECT.DataBuffer" in proc.stderr


class TestPythonSide:
    """Facts that hold without a compiler."""

    def test_running_layout(self) -> None:
        """The interpreter's layout is the one of its pointer size."""
        wide = ctypes.sizeof(ctypes.c_void_p) == 8
        assert ss.SPTD is (ss.ScsiPassThroughDirect64 if wide else ss.ScsiPassThroughDirect32)

    def test_ioctl_code(self) -> None:
        """IOCTL_SCSI_PASS_THROUGH_DIRECT is 0x4D014 (CTL_CODE of controller, 0x405)."""
        assert ss.IOCTL_SCSI_PASS_THROUGH_DIRECT == 0x4D014

    def test_sense_follows_structure(self) -> None:
        """The sense buffer lies after the pass-through structure in the block."""
        for block, sptd in (
            (ss.SptdWithSense64, ss.ScsiPassThroughDirect64),
            (ss.SptdWithSense32, ss.ScsiPassThroughDirect32),
        ):
            assert block.SenseBuf.offset >= ctypes.sizeof(sptd)
            assert block.SenseBuf.size == ss.SENSE_MAX
