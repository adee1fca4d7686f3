"""The least a Python initiator can do per read: the reference line of bench_iscsi.

:func:`bare_loop` logs in with tapepath's login code, then keeps ``depth`` READ(16)s in
flight with nothing but the system calls: one ``send`` per command, a 48-byte header
read and a ``recv_into`` of the data straight into its buffer. It keeps no task state,
takes no lock, checks only what it must to stay in step (opcode, status, data length)
and makes no object per command beyond what the socket calls need.

No real initiator can be this thin (it would accept any answer it does not check, and
it cannot share its connection between threads), so its figure is a ceiling: on a
machine where target and initiator share the cores, a Python initiator's ratio to
iscsi-perf cannot rise above the bare loop's by trimming Python, only by spending less
CPU in the kernel, which this loop already does as little as it can.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from tapepath.iscsi.login import Redirect, make_isid
from tapepath.iscsi.options import ConnectOptions
from tapepath.iscsi.sockio import connect_socket, login_on_socket

__all__ = ["bare_loop"]

_BHS = struct.Struct(">BBBBBBHQIIIIIIII")
_COMMAND = struct.Struct(">BBBBBBHQIIII16s")
_READ16 = struct.Struct(">BBQIH")
_DATA_IN = 0x25
_RESPONSE = 0x21


def bare_loop(
    host: str,
    port: int,
    iqn: str,
    lun: int,
    *,
    depth: int,
    blocks: int,
    capacity: int,
    seconds: float,
) -> tuple[float, float]:
    """Sequential READ(16)s kept ``depth`` in flight for ``seconds``.

    Returns:
        (IOPS, CPU seconds of this process per command).

    Raises:
        RuntimeError: the target answered something the loop does not expect (a status
            other than GOOD after the first command, an unexpected opcode).
    """
    deadline = time.monotonic() + 10
    sock = connect_socket(host, port, deadline)
    try:
        options = ConnectOptions(host=host, port=port, target=iqn, nop_interval=None)
        isid = make_isid(int.from_bytes(os.urandom(3), "big"))
        login = login_on_socket(sock, options, isid=isid, cmd_sn=1, deadline=deadline)
        if isinstance(login, Redirect):
            raise RuntimeError("the target redirected the login")
        sock.settimeout(None)
        return _Loop(sock, login.exp_stat_sn, lun, blocks, capacity).run(depth, seconds)
    finally:
        sock.close()


class _Loop:
    """The loop's state: one socket in full-feature phase, sequence numbers, buffers."""

    def __init__(
        self, sock: socket.socket, stat_sn: int, lun: int, blocks: int, capacity: int
    ) -> None:
        self.sock = sock
        self.stat_sn = stat_sn
        self.cmd_sn = 1
        self.lun_field = lun << 48
        self.blocks = blocks
        self.size = blocks * 512
        self.capacity = capacity
        self.lba = 0
        self.header = bytearray(48)
        self.head = memoryview(self.header)
        self.buffers: dict[int, memoryview] = {}

    def send(self, itt: int, cdb: bytes, length: int) -> None:
        """One SCSI Command PDU (F, R when reading, simple)."""
        flags = 0xC1 if length else 0x81
        self.sock.sendall(
            _COMMAND.pack(
                1, flags, 0, 0, 0, 0, 0, self.lun_field, itt, length, self.cmd_sn, self.stat_sn, cdb
            )
        )
        self.cmd_sn += 1

    def send_read(self, itt: int) -> None:
        """The next sequential READ(16)."""
        self.send(itt, _READ16.pack(0x88, 0, self.lba, self.blocks, 0), self.size)
        self.lba = (self.lba + self.blocks) % (self.capacity - self.blocks)

    def receive(self) -> tuple[int, int, bool]:
        """Read one PDU; (itt, status, final) with the data placed in its buffer."""
        sock, head = self.sock, self.head
        sock.recv_into(head, 48, socket.MSG_WAITALL)
        f = _BHS.unpack(self.header)
        opcode = f[0] & 0x3F
        n = f[5] << 16 | f[6]
        itt = f[8]
        if opcode not in (_DATA_IN, _RESPONSE) or f[4] or itt not in self.buffers or n > self.size:
            raise RuntimeError(f"unexpected PDU: opcode 0x{opcode:02x}, {n} data bytes")
        if n:
            view = self.buffers[itt]
            pos = 0
            while pos < n:
                got = sock.recv_into(view[pos:n], n - pos, socket.MSG_WAITALL)
                if not got:
                    raise RuntimeError("the target closed the connection")
                pos += got
            if n & 3:
                sock.recv_into(head, 4 - (n & 3), socket.MSG_WAITALL)
        final = opcode == _RESPONSE or bool(f[1] & 0x01)
        if final:
            self.stat_sn = (f[10] + 1) & 0xFFFFFFFF
        return itt, f[3], final

    def run(self, depth: int, seconds: float) -> tuple[float, float]:
        """Keep ``depth`` reads in flight for ``seconds``; (IOPS, CPU s per command)."""
        self.buffers = {itt: memoryview(bytearray(self.size)) for itt in range(1, depth + 1)}
        # the first command of a new nexus meets its unit attention: clear it first
        self.send(1, bytes(16), 0)
        while not self.receive()[2]:
            pass
        start = time.monotonic()
        end = start + seconds
        cpu = os.times()
        for itt in self.buffers:
            self.send_read(itt)
        done = 0
        in_flight = depth
        while in_flight:
            itt, status, final = self.receive()
            if not final:
                continue
            if status:
                raise RuntimeError(f"READ(16) ended with status 0x{status:02x}")
            done += 1
            in_flight -= 1
            if time.monotonic() < end:
                self.send_read(itt)
                in_flight += 1
        elapsed = time.monotonic() - start
        after = os.times()
        used = after.user - cpu.user + after.system - cpu.system
        return done / elapsed, used / max(done, 1)
