"""Cutting the active iSCSI connection of a path while a command is outstanding.

:func:`cut_during` runs one call of the application API in a thread, holds the
target's answers (the command ran) or the initiator's requests (it never reached the
target) in a :class:`~tests.proof.holding_proxy.HoldingProxy` in front of the path,
and, once the relay holds bytes of that command, deletes the path's connection with
``tgtadm --mode conn --op delete``. It returns what the call returned or raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tapepath.multipath.path import Path
from tapepath.testing.tgtd import TgtdInstance, sid_from_tsih
from tests.proof.holding_proxy import HoldingProxy

__all__ = ["cut_during", "session_id"]


def session_id(path: Path) -> int:
    """The tgtadm session id of an iSCSI path's live connection."""
    transport: Any = path.transport
    real = getattr(transport, "_get", None)  # a path opened lazily
    if real is not None:
        transport = real() or transport
    return sid_from_tsih(transport.session.connection.tsih)


def cut_during(
    tgt: TgtdInstance,
    tid: int,
    proxy: HoldingProxy,
    path: Path,
    call: Callable[[], object],
    *,
    ran: bool,
    timeout: float = 20.0,
) -> tuple[object, BaseException | None]:
    """Cut ``path``'s connection while ``call`` has a command outstanding on it.

    Args:
        tgt: the tgtd the path leads to (through ``proxy``).
        tid: the target id.
        proxy: the relay in front of the path's portal.
        path: the path (its connection is the one cut).
        call: the API call to run.
        ran: True to let the command reach tgtd and hold its answer; False to hold
            the command itself.
        timeout: seconds to wait for the command and for the call.

    Returns:
        (what the call returned, the exception it raised or None).

    Raises:
        AssertionError: the command never reached the relay, or the call hung.
    """
    sid = session_id(path)
    kind = "answers" if ran else "requests"
    proxy.hold(answers=ran, requests=not ran)
    result: list[object] = [None]
    error: list[BaseException | None] = [None]

    def run() -> None:
        try:
            result[0] = call()
        except BaseException as exc:
            error[0] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert proxy.wait_held(kind, timeout), f"no {kind} reached the relay in {timeout} s"
        tgt.delete_connection(tid, sid, 0)
    finally:
        proxy.release()
        worker.join(timeout)
    assert not worker.is_alive(), f"the call did not return within {timeout} s of the cut"
    return result[0], error[0]
