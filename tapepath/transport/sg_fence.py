"""Path-failure notification and fencing for :class:`~tapepath.transport.sg.SgTransport`.

The transport reads the node's SCSI device state (:mod:`tapepath.transport.sg_state`)
while a command waits; this mixin holds what it learnt (the path is down), refuses new
commands while it stays down, and offers :meth:`PathStateMixin.fence` and
:meth:`PathStateMixin.unfence` to the recovery layer.

Fencing as the Linux kernel allows it (measured on 6.1 with iSCSI, docs/transports.md):

- ``running`` or ``offline``: write ``offline`` to ``device/state``; the kernel
  refuses every later command with ``DID_NO_CONNECT``.
- ``transport-offline``: already fenced; the kernel failed what it held when the
  replacement timeout ran out and fails every new command.
- ``blocked`` (the iSCSI session is recovering): the kernel refuses a write of the
  state (EINVAL), and would send the commands it holds when the session returns. The
  logical unit is deleted on this path instead (``device/delete``): the held commands
  fail at once. :meth:`~PathStateMixin.unfence` scans its address again and reopens
  the node when it comes back under the same name.
"""

from __future__ import annotations

import os
import threading
import time

import structlog

from tapepath.errors import TransportError
from tapepath.transport.base import Outcome, Response
from tapepath.transport.sg_state import DeviceStateWatch, FenceResult, PathDown

__all__ = ["PathStateMixin"]

log = structlog.get_logger("tapepath.transport.sg")


class PathStateMixin:
    """The device-state side of SgTransport (it sets the attributes declared here)."""

    path: str
    _watch: DeviceStateWatch | None
    _down: PathDown | None
    _fenced: bool
    _removed: bool
    _lock: threading.Lock
    _fd: int

    def _notify(self) -> None:
        raise NotImplementedError

    def _replace_fd(self, path: str | None) -> None:
        raise NotImplementedError

    def _check_state(self) -> None:
        """Read the device state (by the reader, outside the lock); remember a down path."""
        watch = self._watch
        if watch is None:
            return
        down = watch.check()
        if down is not None and self._down is None:
            log.info(
                "sg_path_down",
                path=self.path,
                device_state=down.device_state,
                session_state=down.session_state,
            )
        self._down = down

    def _refuse_if_down(self, start: float) -> Response | None:
        """The path was seen down: read again; refuse the command while it still is."""
        if not self._fenced:
            self._check_state()
        down = self._down
        if down is None:
            log.info("sg_path_up", path=self.path)
            return None
        return Response.failure(
            Outcome.NO_CONNECT,
            f"{down.describe()}{' (fenced)' if self._fenced else ''}: command not sent",
            maybe_executed=False,
            duration=time.monotonic() - start,
        )

    def device_state(self) -> str | None:
        """The node's SCSI device state in sysfs.

        Returns:
            ``running``, ``blocked``, ``transport-offline``, ``offline`` ...; None when
            sysfs has no state for this node (not an sg node, or the unit was removed).
        """
        return None if self._watch is None else self._watch.device_state()

    @property
    def fenced(self) -> bool:
        """True after a successful :meth:`fence` until a successful :meth:`unfence`.

        While fenced, no command this transport handed to the kernel can reach the
        device later: recovery may resend them on another path.
        """
        return self._fenced

    def fence(self) -> FenceResult:
        """Make sure no command held in the kernel for this path reaches the device later.

        Root only. ``running``/``offline``: writes ``offline``; ``transport-offline``:
        nothing to do; ``blocked``: deletes the logical unit on this path (the kernel
        refuses a state write then) and closes the node, so that a rescan can give the
        unit its old sg name back (it cannot while any process keeps the node open).
        Waiting commands come back as path failures and new ones are refused until
        :meth:`unfence`.

        Returns:
            A FenceResult; ``done`` False (with the reason) when not root, when sysfs
            has no state for the node, or when the kernel refused. Then the commands
            held for this path may still run later: do not resend them elsewhere.
        """
        watch = self._watch
        if watch is None:
            result = FenceResult(False, None, f"{self.path}: no sysfs device state")
        else:
            state = watch.device_state()
            if state == "transport-offline":
                result = FenceResult(True, state)
            elif state in ("blocked", "created-blocked"):
                result = watch.remove()
                if result.done:
                    self._removed = True
                    self._replace_fd(None)  # so the unit can come back under its name
            elif state is None:
                result = FenceResult(True, None, "the logical unit is already removed")
            else:
                result = watch.set_offline()
        if result.done:
            self._fenced = True
            self._down = PathDown(device_state=result.state, session_state=None)
            log.info("sg_fenced", path=self.path, state=result.state, removed=self._removed)
            self._notify()  # waiters see the path down at once
        else:
            log.warning("sg_fence_failed", path=self.path, reason=result.reason)
        return result

    def unfence(self) -> FenceResult:
        """Bring the path back after :meth:`fence` (when the monitor reinstates it).

        Writes ``running``; after a removal, scans the unit's address again and reopens
        the node when it comes back under the same name. Nothing is done while the
        device's iSCSI session is not ``LOGGED_IN`` (a scan would wait for it).

        Returns:
            A FenceResult; ``done`` False with the reason when the device is not back
            (a rescan that found the unit under another node name says which).
        """
        watch = self._watch
        if watch is None:
            return FenceResult(False, None, f"{self.path}: no sysfs device state")
        session = watch.session_state()
        if session is not None and session != "LOGGED_IN":  # a scan would hang on it
            return FenceResult(False, watch.device_state(), f"iSCSI session {session}")
        if self._removed:
            try:
                node = watch.rescan()
            except OSError as exc:
                return FenceResult(False, None, f"rescan failed: {exc.strerror}", exc.errno)
            if node != watch.node:
                found = "not found" if node is None else f"came back as {node}"
                return FenceResult(False, None, f"rescan: the logical unit {found}")
            try:
                self._replace_fd(self.path)
            except TransportError as exc:
                return FenceResult(False, None, str(exc))
            self._removed = False
            result = FenceResult(True, watch.device_state())
        else:
            result = watch.set_running()
        if result.done:
            self._fenced = False
            self._down = None
            log.info("sg_unfenced", path=self.path, node=os.path.basename(self.path))
        else:
            log.warning("sg_unfence_failed", path=self.path, reason=result.reason)
        return result
