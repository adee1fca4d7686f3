"""The SCSI device state of an sg node, read from sysfs: path-failure notification and fencing.

The Linux SCSI midlayer keeps a state per logical unit in
``/sys/class/scsi_generic/sgN/device/state``: ``running`` normally, ``blocked`` while
the transport recovers a lost connection (the kernel then holds new and requeued
commands), ``transport-offline`` once the transport gives up (iSCSI: after the
session's replacement timeout), ``offline`` when error handling or an administrator
took the device out of service. For iSCSI the session's own state is in
``/sys/class/iscsi_session/sessionN/state`` (``LOGGED_IN``, ``FAILED``, ``FREE``).

:class:`DeviceStateWatch` reads both for :class:`~tapepath.transport.sg.SgTransport`
while a command waits, and writes the device state to fence the path (``offline``: the
kernel fails the commands it holds instead of sending them when the session returns)
and to bring it back (``running``).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import structlog
from attrs import frozen

__all__ = [
    "DOWN_SESSION_STATES",
    "DOWN_STATES",
    "DeviceStateWatch",
    "FenceResult",
    "PathDown",
]

log = structlog.get_logger("tapepath.transport.sg")

DOWN_STATES = frozenset(
    {"blocked", "created-blocked", "transport-offline", "offline", "cancel", "deleted"}
)
"""Device states in which a command on the node cannot reach the logical unit now."""

DOWN_SESSION_STATES = frozenset({"FAILED", "FREE"})
"""iSCSI session states in which the session carries no command."""

_SESSION = re.compile(r"/session(\d+)/")
_HCTL = re.compile(r"(\d+):(\d+):(\d+):(\d+)")
_STATE_MAX = 64  # the longest state name is far shorter


@frozen
class PathDown:
    """What sysfs said when it showed the path down.

    Attributes:
        device_state: the SCSI device state (``blocked``, ``transport-offline`` ...), or
            None when it could not be read.
        session_state: the iSCSI session state, or None (not iSCSI, or unreadable).
    """

    device_state: str | None
    session_state: str | None

    def describe(self) -> str:
        """A short account for a FailureDetail message."""
        parts = [f"SCSI device state {self.device_state or 'unknown'}"]
        if self.session_state is not None:
            parts.append(f"iSCSI session {self.session_state}")
        return ", ".join(parts)


@frozen
class FenceResult:
    """The outcome of :meth:`DeviceStateWatch.fence` or :meth:`DeviceStateWatch.unfence`.

    Attributes:
        done: the device is now in the state asked for.
        state: the device state read back afterwards (None when unreadable).
        reason: why it could not be done (empty when done).
        errno: the OS error number of the failed write, if any.
    """

    done: bool
    state: str | None
    reason: str = ""
    errno: int | None = None


class DeviceStateWatch:
    """The sysfs state files of one sg node.

    Args:
        node: the sg node's name (``sg3``).
        sysfs: the sysfs mount point (tests pass a fake tree).

    Attributes:
        state_file: ``.../scsi_generic/sgN/device/state``.
        session_file: the iSCSI session's ``state`` file, None when the device is not
            behind an iSCSI session.
    """

    def __init__(self, node: str, sysfs: str | os.PathLike[str] = "/sys") -> None:
        root = Path(sysfs)
        device = root / "class" / "scsi_generic" / node / "device"
        self.node = node
        self.root = root
        self.state_file = device / "state"
        self.delete_file = device / "delete"
        self.session_file: Path | None = None
        try:
            real = os.path.realpath(device)
        except OSError:
            real = ""
        self.hctl: tuple[int, int, int, int] | None = None
        m = _HCTL.fullmatch(os.path.basename(real))
        if m:
            h, c, t, lun = (int(x) for x in m.groups())
            self.hctl = (h, c, t, lun)
        m = _SESSION.search(real)
        if m:
            candidate = root / "class" / "iscsi_session" / f"session{m.group(1)}" / "state"
            if candidate.exists():
                self.session_file = candidate

    @classmethod
    def for_path(cls, path: str, sysfs: str | os.PathLike[str] = "/sys") -> DeviceStateWatch | None:
        """The watch for a device node path, or None when sysfs has no state file for it."""
        name = os.path.basename(os.path.realpath(path))
        if not re.fullmatch(r"sg\d+", name):
            return None
        watch = cls(name, sysfs)
        return watch if watch.state_file.exists() else None

    @staticmethod
    def _read(path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            return os.read(fd, _STATE_MAX).decode("ascii", "replace").strip() or None
        except OSError:
            return None
        finally:
            os.close(fd)

    def device_state(self) -> str | None:
        """The SCSI device state (None when the file cannot be read: the device is gone)."""
        return self._read(self.state_file)

    def session_state(self) -> str | None:
        """The iSCSI session state, None when not iSCSI or unreadable."""
        return self._read(self.session_file)

    def check(self) -> PathDown | None:
        """None while the path can carry commands, else what shows it down.

        A missing state file counts as down (the logical unit was removed).
        """
        dev = self.device_state()
        session = self.session_state()
        if dev is not None and dev not in DOWN_STATES and session not in DOWN_SESSION_STATES:
            return None
        return PathDown(device_state=dev, session_state=session)

    @staticmethod
    def _put(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode("ascii") + b"\n")  # sysfs stores want the newline
        finally:
            os.close(fd)

    def _write(self, value: str) -> FenceResult:
        try:
            self._put(self.state_file, value)
        except OSError as exc:
            return self._refused(value, exc, self.state_file)
        state = self.device_state()
        if state != value:
            return FenceResult(False, state, f"wrote {value!r} but the device reads {state!r}")
        return FenceResult(True, state)

    def _refused(self, value: str, exc: OSError, target: Path) -> FenceResult:
        err = exc.errno or 0
        name = errno.errorcode.get(err, str(err))
        if err in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason = f"cannot write {target} ({name}): needs root"
        elif err == errno.EINVAL:
            reason = f"the kernel refused {value!r} in state {self.device_state()!r} ({name})"
        else:
            reason = f"writing {value!r} to {target} failed ({name})"
        return FenceResult(False, self.device_state(), reason, err)

    def set_offline(self) -> FenceResult:
        """Write ``offline`` (the kernel takes it only from ``running`` or ``offline``)."""
        return self._write("offline")

    def set_running(self) -> FenceResult:
        """Write ``running`` (the kernel takes it only from ``running`` or ``offline``)."""
        return self._write("running")

    def remove(self) -> FenceResult:
        """Delete the logical unit on this path (``device/delete``): held commands fail.

        The kernel fails every command it holds for the device with ``DID_NO_CONNECT``
        and removes the sg node; it does not come back by itself when the session
        returns (:meth:`rescan` brings it back).
        """
        try:
            self._put(self.delete_file, "1")
        except OSError as exc:
            return self._refused("1", exc, self.delete_file)
        return FenceResult(True, self.device_state() or "deleted")

    def rescan(self) -> str | None:
        """Scan the removed logical unit's address again; the name of its sg node, or None.

        Raises:
            OSError: the scan file cannot be written (not root, host gone).
        """
        if self.hctl is None:
            return None
        host, channel, target, lun = self.hctl
        self._put(
            self.root / "class" / "scsi_host" / f"host{host}" / "scan", f"{channel} {target} {lun}"
        )
        return self.find_node(self.root, self.hctl)

    @staticmethod
    def find_node(root: Path, hctl: tuple[int, int, int, int]) -> str | None:
        """The sg node whose device is at ``hctl``, None when there is none."""
        want = ":".join(str(x) for x in hctl)
        for link in sorted((root / "class" / "scsi_generic").glob("sg*")):
            if os.path.basename(os.path.realpath(link / "device")) == want:
                return link.name
        return None
