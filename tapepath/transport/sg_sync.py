"""The synchronous ``SG_IO`` ioctl on a helper thread, for nodes outside the sg major.

``/dev/nstN`` and ``/dev/schN`` take ``SG_IO`` but not the sg driver's write/read
interface, so :class:`~tapepath.transport.sg.SgTransport` runs the ioctl on a reused
helper thread (:class:`~tapepath.transport.sg_struct.BlockingCalls`) and waits for it
only until the caller's deadline.
"""

from __future__ import annotations

import errno
import time

import structlog

from tapepath.transport.base import Response
from tapepath.transport.sg_outcome import REFUSED_ERRNOS, errno_failure
from tapepath.transport.sg_struct import SG_IO, BlockingCalls, Completion, Kit, SgSyscalls

__all__ = ["sync_sg_io"]

log = structlog.get_logger("tapepath.transport.sg")


def sync_sg_io(
    sys: SgSyscalls,
    fd: int,
    blocking: BlockingCalls,
    kit: Kit,
    *,
    deadline: float,
    start: float,
    path: str,
) -> Response | Completion | None:
    """Run ``SG_IO`` with ``kit`` on a helper thread until ``deadline``.

    Returns:
        The completion's fields (a :data:`~tapepath.transport.sg_struct.Completion`), a failure
        Response for an errno, or None when the deadline passed first (the helper
        thread then keeps the kit, and its buffers, alive until the ioctl returns).
    """
    kit.done = False
    kit.error = 0

    def run() -> None:
        try:
            sys.ioctl(fd, SG_IO, kit.hdr)
            h = kit.hdr
            kit.out = (h.pack_id, h.status, h.sb_len_wr, h.host_status, h.driver_status, h.resid)
        except OSError as exc:
            kit.error = exc.errno or errno.EIO
        except BaseException as exc:  # a broken syscall layer: a failed command
            log.error("sg_io_raised", path=path, error=repr(exc))
            kit.error = errno.EIO
        kit.done = True

    finished = blocking.start(run)
    if not finished.wait(max(0.0, deadline - time.monotonic())):
        return None
    if kit.error:
        kit.pin = None
        return errno_failure(
            kit.error,
            "SG_IO",
            maybe_executed=kit.error not in REFUSED_ERRNOS,
            duration=time.monotonic() - start,
        )
    return kit.out
