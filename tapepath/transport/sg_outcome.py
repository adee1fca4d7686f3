"""How an sg completion (host, driver and SCSI status) or an errno becomes an Outcome.

Everything is table-driven so the documentation and the tests read the same tables:

- :data:`HOST_STATUS` maps each ``DID_*`` code to a :class:`Rule`: a path failure (its
  :class:`~tapepath.transport.base.Outcome`), a retryable condition (the command did not
  complete for a passing reason and the path is not blamed; reported as ``ABORTED`` with
  ``detail.retryable=True`` and the row's ``maybe_executed``), or a device error (the
  device's status and sense speak; reported with outcome ``OK``).
- :data:`DRIVER_STATUS` does the same for the low nibble of ``driver_status``.
- :data:`ERRNO_OUTCOME` covers errors from the system calls themselves (a node that
  vanished under the transport is ``DEVICE_GONE``).

The raw host and driver status always stay in the response's
:class:`~tapepath.transport.base.FailureDetail`. :func:`completion_response` builds the
Response for one completion (the clean case directly, the rest through the tables).
"""

from __future__ import annotations

import ctypes
import enum
import errno as _errno

from attrs import frozen

from tapepath.transport.base import Outcome, Response
from tapepath.transport.sg_struct import Kit

__all__ = [
    "DRIVER_STATUS",
    "ERRNO_OUTCOME",
    "HOST_STATUS",
    "REFUSED_ERRNOS",
    "Kind",
    "Rule",
    "classify_completion",
    "completion_response",
    "errno_failure",
    "host_status_name",
]


class Kind(enum.Enum):
    """What a low-level code says about a command."""

    OK = "ok"
    """Nothing wrong at this level; look further down (SCSI status)."""
    PATH = "path"
    """The path failed: try another path (the command may have run)."""
    RETRY = "retry"
    """The command did not complete, for a passing reason; retrying on the same path is fine."""
    DEVICE = "device"
    """The device failed the command; the SCSI status and sense say why."""


@frozen
class Rule:
    """One row of a mapping table.

    Attributes:
        name: the kernel's name for the code (``DID_NO_CONNECT``).
        kind: the category.
        outcome: the transport outcome reported (OK for device errors).
        maybe_executed: for a RETRY row, whether the device may have run the command
            (False only where the kernel's meaning is "not started").
        reason: why the row says what it says (the kernel's meaning of the code).
    """

    name: str
    kind: Kind
    outcome: Outcome
    maybe_executed: bool = True
    reason: str = ""


_P, _R, _D = Kind.PATH, Kind.RETRY, Kind.DEVICE

HOST_STATUS: dict[int, Rule] = {
    0x00: Rule("DID_OK", Kind.OK, Outcome.OK),
    0x01: Rule("DID_NO_CONNECT", _P, Outcome.NO_CONNECT),
    0x02: Rule(
        "DID_BUS_BUSY",
        _R,
        Outcome.ABORTED,
        maybe_executed=False,
        reason="the bus or HBA stayed busy until its own timeout: the command was not delivered",
    ),
    0x03: Rule("DID_TIME_OUT", _P, Outcome.TIMED_OUT),
    0x04: Rule("DID_BAD_TARGET", _P, Outcome.DEVICE_GONE),
    0x05: Rule("DID_ABORT", _P, Outcome.ABORTED),
    0x06: Rule(
        "DID_PARITY",
        _R,
        Outcome.ABORTED,
        reason="a parity error while the command or its data moved: it may have run",
    ),
    0x07: Rule("DID_ERROR", _P, Outcome.LINK_LOST),
    0x08: Rule("DID_RESET", _P, Outcome.ABORTED),
    0x09: Rule("DID_BAD_INTR", _P, Outcome.ABORTED),
    0x0A: Rule("DID_PASSTHROUGH", Kind.OK, Outcome.OK),
    0x0B: Rule(
        "DID_SOFT_ERROR",
        _R,
        Outcome.ABORTED,
        reason="the low-level driver asks for a retry of an issued command: it may have run",
    ),
    0x0C: Rule(
        "DID_IMM_RETRY",
        _R,
        Outcome.ABORTED,
        maybe_executed=False,
        reason="the driver could not queue it now (e.g. session not logged in yet): not sent",
    ),
    0x0D: Rule(
        "DID_REQUEUE",
        _R,
        Outcome.ABORTED,
        maybe_executed=False,
        reason="the driver handed it back to be queued again (not started on the target)",
    ),
    0x0E: Rule("DID_TRANSPORT_DISRUPTED", _P, Outcome.LINK_LOST),
    0x0F: Rule("DID_TRANSPORT_FAILFAST", _P, Outcome.LINK_LOST),
    0x10: Rule("DID_TARGET_FAILURE", _D, Outcome.OK),
    0x11: Rule("DID_NEXUS_FAILURE", _D, Outcome.OK),
    0x12: Rule("DID_ALLOC_FAILURE", _D, Outcome.OK),
    0x13: Rule("DID_MEDIUM_ERROR", _D, Outcome.OK),
    0x14: Rule("DID_TRANSPORT_MARGINAL", _P, Outcome.LINK_LOST),
}
"""``host_status`` (``DID_*``) to rule. Codes not listed are path failures (LINK_LOST)."""

_UNKNOWN_HOST = Rule("DID_UNKNOWN", _P, Outcome.LINK_LOST)

DRIVER_STATUS: dict[int, Rule] = {
    0x0: Rule("DRIVER_OK", Kind.OK, Outcome.OK),
    0x1: Rule(
        "DRIVER_BUSY",
        _R,
        Outcome.ABORTED,
        reason="an old driver-byte code no current kernel sets; whether it ran is unknown",
    ),
    0x2: Rule(
        "DRIVER_SOFT",
        _R,
        Outcome.ABORTED,
        reason="a soft error the driver reported after issuing the command: it may have run",
    ),
    0x3: Rule("DRIVER_MEDIA", _D, Outcome.OK),
    0x4: Rule("DRIVER_ERROR", _P, Outcome.ABORTED),
    0x5: Rule("DRIVER_INVALID", _P, Outcome.ABORTED),
    0x6: Rule("DRIVER_TIMEOUT", _P, Outcome.TIMED_OUT),
    0x7: Rule("DRIVER_HARD", _P, Outcome.ABORTED),
    0x8: Rule("DRIVER_SENSE", Kind.OK, Outcome.OK),
}
"""Low nibble of ``driver_status`` to rule (the high nibble held old "suggestions")."""

ERRNO_OUTCOME: dict[int, Outcome] = {
    _errno.ENODEV: Outcome.DEVICE_GONE,
    # The sg driver answers ENXIO when the SCSI device is offline (SDEV_OFFLINE or
    # SDEV_TRANSPORT_OFFLINE, e.g. an iSCSI session past its replacement timeout): the
    # path is down, the device may well exist. ENODEV is the driver's "detaching".
    _errno.ENXIO: Outcome.NO_CONNECT,
    _errno.EIO: Outcome.DEVICE_GONE,
    _errno.ENOENT: Outcome.DEVICE_GONE,
    _errno.ETIMEDOUT: Outcome.TIMED_OUT,
    _errno.ECONNRESET: Outcome.LINK_LOST,
    _errno.ENOTCONN: Outcome.NO_CONNECT,
    _errno.ESHUTDOWN: Outcome.NO_CONNECT,
    _errno.EINTR: Outcome.ABORTED,
    _errno.ENOMEM: Outcome.ABORTED,
    _errno.EINVAL: Outcome.ABORTED,
}
"""Errors of open/write/read/ioctl on a working node; others count as NO_CONNECT."""

REFUSED_ERRNOS = frozenset(
    {
        _errno.ENXIO,
        _errno.ENODEV,
        _errno.ENOENT,
        _errno.EINVAL,
        _errno.ENOMEM,
        _errno.EDOM,
        _errno.EAGAIN,
        _errno.EACCES,
        _errno.EPERM,
        _errno.EBADF,
    }
)
"""Errors with which the driver refuses a command before it is started (not executed)."""


_KIND_TEXT = {
    Kind.OK: "ok",
    Kind.PATH: "path failure",
    Kind.RETRY: "retryable",
    Kind.DEVICE: "device error",
}


def host_status_name(code: int) -> str:
    """The ``DID_*`` name of a host status (``DID_0x2a`` for unknown codes)."""
    rule = HOST_STATUS.get(code)
    return rule.name if rule is not None else f"DID_0x{code:02x}"


def errno_failure(err: int, what: str, *, maybe_executed: bool, duration: float) -> Response:
    """The response for a system call that failed with ``err``.

    Args:
        err: the errno.
        what: which call failed, for the message (``"write"``).
        maybe_executed: whether the command may have reached the device.
        duration: seconds spent.
    """
    outcome = ERRNO_OUTCOME.get(err, Outcome.NO_CONNECT)
    name = _errno.errorcode.get(err, str(err))
    return Response.failure(
        outcome,
        f"sg {what} failed: {name}",
        maybe_executed=maybe_executed,
        duration=duration,
        errno=err,
    )


def classify_completion(
    status: int,
    host_status: int,
    driver_status: int,
    *,
    sense: bytes,
    data: bytes,
    residual: int,
    transferred: int,
    duration: float,
) -> Response:
    """Build the Response for one completed sg command.

    The host status is looked at first, then the driver status, then the SCSI status.
    A device-error row keeps outcome OK with the device's status and sense, unless the
    status is GOOD (which would read as success): then it is reported as ``ABORTED``.

    Args:
        status: the SCSI status byte.
        host_status: ``DID_*``.
        driver_status: the driver byte.
        sense: the sense bytes written.
        data: the data read (empty for data-out and execute_into).
        residual: ``resid`` from the driver.
        transferred: bytes actually moved.
        duration: seconds from submission to completion.
    """
    if host_status == 0 and driver_status & 0xF in (0, 8):
        return Response(
            status=status,
            data=data,
            sense=sense,
            residual=residual,
            duration=duration,
            transferred=transferred,
        )
    host_rule = HOST_STATUS.get(host_status, _UNKNOWN_HOST)
    rule = host_rule
    if rule.kind is Kind.OK:
        rule = DRIVER_STATUS.get(driver_status & 0xF, DRIVER_STATUS[0x4])
    if rule.kind is Kind.OK:
        return Response(
            status=status,
            data=data,
            sense=sense,
            residual=residual,
            duration=duration,
            transferred=transferred,
        )
    driver_name = DRIVER_STATUS.get(driver_status & 0xF, DRIVER_STATUS[0x4]).name
    message = (
        f"{host_status_name(host_status)} (0x{host_status:02x}), "
        f"{driver_name} (0x{driver_status:02x}), status 0x{status:02x}: {_KIND_TEXT[rule.kind]}"
    )
    if rule.kind is Kind.DEVICE and status not in (0x00, 0x04):
        failure = Response.failure(
            Outcome.ABORTED, message, host_status=host_status, driver_status=driver_status
        )
        return Response(
            status=status,
            data=data,
            sense=sense,
            residual=residual,
            duration=duration,
            detail=failure.detail,
            transferred=transferred,
        )
    outcome = Outcome.ABORTED if rule.kind is Kind.DEVICE else rule.outcome
    retryable = rule.kind is Kind.RETRY
    failed = Response.failure(
        outcome,
        message,
        maybe_executed=rule.maybe_executed if retryable else True,
        duration=duration,
        host_status=host_status,
        driver_status=driver_status,
        retryable=retryable,
    )
    if sense:
        return Response(
            status=status,
            sense=sense,
            duration=duration,
            outcome=outcome,
            detail=failed.detail,
        )
    return failed


def completion_response(
    out: tuple[int, int, int, int, int], kit: Kit, n: int, data_in: bool, duration: float
) -> Response:
    """The response for a completion (``out`` = status, sb_len_wr, host, driver, resid)."""
    status, sb_len, host, driver, resid = out
    if 0 <= resid <= n:
        moved = n - resid
    else:
        resid = 0 if resid < 0 else n
        moved = n - resid
    data = ctypes.string_at(kit.hdr.dxferp, moved) if data_in and moved else b""
    if not sb_len and not status and not host and not driver & 7:
        return Response(data=data, residual=resid, duration=duration, transferred=moved)
    return classify_completion(
        status,
        host,
        driver,
        sense=ctypes.string_at(kit.sense, sb_len) if sb_len else b"",
        data=data,
        residual=resid,
        transferred=moved,
        duration=duration,
    )
