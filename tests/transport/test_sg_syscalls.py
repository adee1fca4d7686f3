"""The sg_io_hdr layout against <scsi/sg.h>, the one-call completion reader, and the
real system-call layer (on a pipe and ordinary nodes)."""

from __future__ import annotations

import ctypes
import os
import select
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.transport.sg import OsSyscalls
from tapepath.transport.sg_struct import COMPLETION, COMPLETION_OFFSET, HDR_SIZE, SgIoHdr


class TestLayout:
    """The ctypes sg_io_hdr matches <scsi/sg.h> as the C compiler lays it out."""

    @pytest.mark.needs("gcc")
    def test_matches_c_header(self, tmp_path: Path) -> None:
        """Static asserts of size and every field offset compile against <scsi/sg.h>."""
        lines = ["#include <stddef.h>", "#include <scsi/sg.h>"]
        lines.append(
            f'_Static_assert(sizeof(struct sg_io_hdr) == {ctypes.sizeof(SgIoHdr)}, "size");'
        )
        for name, _ctype in SgIoHdr._fields_:
            off = getattr(SgIoHdr, name).offset
            lines.append(f'_Static_assert(offsetof(struct sg_io_hdr, {name}) == {off}, "{name}");')
        src = tmp_path / "sg_layout.c"
        src.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(
            ["gcc", "-c", "-o", str(tmp_path / "sg_layout.o"), str(src)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr


class TestCompletionStruct:
    """The one-call completion reader agrees with the ctypes header."""

    @given(
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFF),
        st.integers(-(2**31), 2**31 - 1),
        st.binary(min_size=88, max_size=88),
    )
    def test_reads_the_ctypes_fields(
        self, pid: int, status: int, sb: int, host: int, driver: int, resid: int, noise: bytes
    ) -> None:
        """Whatever the other bytes hold, the six fields read back as ctypes wrote them."""
        hdr = SgIoHdr.from_buffer_copy(noise[: ctypes.sizeof(SgIoHdr)].ljust(HDR_SIZE, b"\0"))
        hdr.pack_id, hdr.status, hdr.sb_len_wr = pid, status, sb
        hdr.host_status, hdr.driver_status, hdr.resid = host, driver, resid
        raw = bytearray(bytes(hdr))
        assert COMPLETION.unpack_from(raw, COMPLETION_OFFSET) == (
            pid,
            status,
            sb,
            host,
            driver,
            resid,
        )


class TestOsSyscalls:
    """The real system-call layer, on a pipe and ordinary nodes."""

    def test_header_round_trip(self) -> None:
        """A header written to a pipe reads back whole; an empty pipe says EAGAIN."""
        real = OsSyscalls()
        r, w = os.pipe()
        try:
            os.set_blocking(r, False)
            poll = real.poller(r, select.POLLIN)
            hdr = SgIoHdr(pack_id=4242, host_status=0x0E, resid=-3)
            assert real.write(w, hdr) == ctypes.sizeof(SgIoHdr)
            assert poll(1000) == [(r, select.POLLIN)]
            back = bytearray(HDR_SIZE)
            assert real.readv(r, [back]) == ctypes.sizeof(SgIoHdr)
            got = SgIoHdr.from_buffer(back)
            assert (got.pack_id, got.host_status, got.resid) == (4242, 0x0E, -3)
            del got  # releases the export of ``back``
            assert poll(10) == []
            with pytest.raises(BlockingIOError):
                real.readv(r, [back])
        finally:
            real.close(r)
            os.close(w)

    def test_char_major(self, tmp_path: Path) -> None:
        """/dev/null is character major 1; a regular file has no major."""
        real = OsSyscalls()
        fd = os.open("/dev/null", os.O_RDONLY)
        try:
            assert real.char_major(fd) == 1
        finally:
            os.close(fd)
        f = tmp_path / "plain"
        f.write_bytes(b"")
        fd = os.open(f, os.O_RDONLY)
        try:
            assert real.char_major(fd) is None
        finally:
            os.close(fd)
