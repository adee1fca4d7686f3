"""Values, errors and helpers of the tgtd controller (:mod:`tapepath.testing.tgtd`).

Parsing ``tgtadm`` listings, the control-channel lock check and small process helpers
live here so that :mod:`tapepath.testing.tgtd_process` holds only the process's life
cycle and :mod:`tapepath.testing.tgtd` only the configuration commands. Everything
public is re-exported from :mod:`tapepath.testing.tgtd`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

__all__ = [
    "HOST",
    "Connection",
    "TgtadmError",
    "TgtdError",
    "VtlLayout",
    "find_free_port",
    "sid_from_tsih",
]

HOST = "127.0.0.1"
"""The only address a TgtdInstance listens on."""

_SOCKET_DIR = Path("/var/run/tgtd")
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
_REDACTED = "<redacted>"


class TgtdError(RuntimeError):
    """tgtd could not be started, or stopped answering."""


class TgtadmError(TgtdError):
    """A ``tgtadm`` command failed; the message holds the command (secrets redacted)."""

    def __init__(self, message: str, *, returncode: int, output: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.output = output


@frozen
class Connection:
    """One iSCSI connection as ``tgtadm --op show --mode conn`` lists it.

    Attributes:
        tid: the target id.
        sid: the session id in the form ``tgtadm --sid`` wants (see :func:`sid_from_tsih`).
        cid: the connection id within the session.
        initiator: the initiator's IQN.
        address: the initiator's IP address as the target sees it.
    """

    tid: int
    sid: int
    cid: int
    initiator: str
    address: str


@frozen
class VtlLayout:
    """What :meth:`TgtdInstance.configure_vtl` built.

    Attributes:
        tid: the target id.
        iqn: the target's IQN.
        media_dir: the directory holding the cartridge images (the changer's media_home).
        changer_lun: the changer's LUN.
        drive_luns: one tape LUN per drive, in drive order.
        transport_address: the medium transport (picker) element address.
        drive_addresses: the data transfer element addresses, ``drive_addresses[i]``
            tied to ``drive_luns[i]``.
        slot_addresses: the storage element addresses.
        import_export_addresses: the import/export element addresses.
        barcodes: the cartridges placed in the first slots, ``barcodes[i]`` in
            ``slot_addresses[i]``.
        disk_lun: the LUN of a sparse disk (for benchmarks), or None.
    """

    tid: int
    iqn: str
    media_dir: Path
    changer_lun: int
    drive_luns: tuple[int, ...]
    transport_address: int
    drive_addresses: tuple[int, ...]
    slot_addresses: tuple[int, ...]
    import_export_addresses: tuple[int, ...]
    barcodes: tuple[str, ...]
    disk_lun: int | None = None

    @property
    def luns(self) -> tuple[int, ...]:
        """Every LUN of the library (changer, drives, disk), ascending; LUN 0 excluded."""
        extra = () if self.disk_lun is None else (self.disk_lun,)
        return tuple(sorted((self.changer_lun, *self.drive_luns, *extra)))


def sid_from_tsih(tsih: int) -> int:
    """The ``tgtadm --sid`` number of a session whose TSIH an initiator saw on the wire.

    tgtd writes the TSIH field in host (little-endian) byte order, so the two bytes an
    initiator reads big-endian are the session id byte-swapped.

    Args:
        tsih: the 16-bit TSIH from the login response, read as the standard says.

    Returns:
        The session id tgtadm lists and accepts.
    """
    if not 0 <= tsih <= 0xFFFF:
        raise ValueError(f"TSIH must fit 16 bits, got {tsih}")
    return ((tsih & 0xFF) << 8) | (tsih >> 8)


def find_free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now (racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))


def _channel_locked(channel: int) -> bool:
    """True when some process holds the lock of tgtd control channel ``channel``."""
    try:
        inode = (_SOCKET_DIR / f"socket.{channel}.lock").stat().st_ino
    except FileNotFoundError:
        return False
    return bool(_lock_holders(inode))


def _lock_holders(inode: int) -> set[int]:
    holders: set[int] = set()
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return holders
    for line in text.splitlines():
        parts = line.split()
        # "1: POSIX  ADVISORY  WRITE 8154 fe:00:1515524 0 0"
        if len(parts) >= 6 and parts[4].isdigit() and parts[5].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(parts[4]))
    return holders


def _parse_connections(tid: int, text: str) -> list[Connection]:
    conns: list[Connection] = []
    sid: int | None = None
    cid: int | None = None
    fields: dict[str, str] = {}

    def flush() -> None:
        if sid is not None and cid is not None:
            conns.append(
                Connection(
                    tid=tid,
                    sid=sid,
                    cid=cid,
                    initiator=fields.get("Initiator", ""),
                    address=fields.get("IP Address", ""),
                )
            )

    for raw in text.splitlines():
        key, sep, value = raw.strip().partition(":")
        if not sep:
            continue
        value = value.strip()
        if key == "Session":
            flush()
            sid, cid, fields = int(value), None, {}
        elif key == "Connection":
            flush()
            cid, fields = int(value), {}
        else:
            fields[key] = value
    flush()
    return conns


def _redact(args: Sequence[str]) -> list[str]:
    shown = list(args)
    for i, a in enumerate(shown[:-1]):
        if a == "--password":
            shown[i + 1] = _REDACTED
    return shown


def _tgtimg(path: Path, barcode: str, size_mb: int) -> None:
    if path.exists():
        return
    tgtimg = _which("tgtimg")
    if tgtimg is None:
        raise TgtdError("tgtimg not installed (Debian package tgt)")
    cmd = [tgtimg, *["--op", "new", "--device-type", "tape", "--type", "data"]]
    cmd += ["--barcode", barcode, "--size", str(size_mb), "--file", str(path)]
    res = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    if res.returncode != 0:
        raise TgtdError(f"tgtimg failed for {path}: {res.stderr.decode('utf-8', 'replace')}")
