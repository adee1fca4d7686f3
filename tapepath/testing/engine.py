"""How a command runs in a VirtualLibrary: sessions, faults, then the device's front end.

:func:`execute` is the hot path of every ``sim://`` command. Without a fault plan it
takes the library lock, checks the port, reconnects a lost nexus and hands the CDB to
the device's front end. With a plan it first asks the plan which faults apply,
applies their state changes under the lock, waits (black hole, delay) without it,
and shapes the response (status only, lost response, timeout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import evolve, frozen

from tapepath.testing.faults import (
    BlackHole,
    Busy,
    ControlPathFailure,
    Delay,
    DriveReset,
    Fault,
    InjectUnitAttention,
    LinkDown,
    PowerCycle,
    ReservationConflict,
    ResponseLost,
    RobotStop,
    TaskSetFull,
)
from tapepath.transport.base import Outcome, Response, Status

if TYPE_CHECKING:
    from tapepath.testing.library import VirtualLibrary
    from tapepath.testing.nexus import LogicalUnit, Nexus, Port

__all__ = ["Decision", "Session", "apply_faults", "execute"]


class Session:
    """One open path: an initiator on one port of one logical unit (used by SimTransport).

    Attributes:
        lu: the logical unit.
        port: the target port.
        initiator: the initiator name.
        nexus: the current I_T nexus (replaced after a loss).
    """

    __slots__ = ("initiator", "lu", "nexus", "port")

    def __init__(self, lu: LogicalUnit, port: Port, initiator: str, nexus: Nexus) -> None:
        self.lu = lu
        self.port = port
        self.initiator = initiator
        self.nexus = nexus


@frozen
class Decision:
    """What the fired faults mean for the command.

    Attributes:
        response: answer this instead of running the command.
        sleep: seconds to wait before running it.
        timed_out: do not answer: wait the caller's timeout, then TIMED_OUT.
        lose_response: run it, then report LINK_LOST (maybe executed).
        robot_stop: the next robot move stops half-way.
    """

    response: Response | None = None
    sleep: float = 0.0
    timed_out: bool = False
    lose_response: bool = False
    robot_stop: bool = False


_NO_FAULT = Decision()


def apply_faults(lib: VirtualLibrary, s: Session, faults: list[Fault]) -> Decision:
    """Apply the state changes of fired faults (library lock held); say what follows."""
    resp: Response | None = None
    sleep = 0.0
    timed_out = lose = stop = False
    lu, port = s.lu, s.port
    for f in faults:
        if isinstance(f, LinkDown):
            for p in lu.ports if f.port is None else [port]:
                if not p.link_up:
                    continue
                lib._set_link(lu, p, False)
                if f.duration is not None:
                    lib._restore[(lu.name, p.index)] = lib.clock.now() + f.duration
                if p is port:
                    resp = resp or Response.failure(
                        Outcome.LINK_LOST, "simulated link down", maybe_executed=False
                    )
        elif isinstance(f, BlackHole):
            timed_out = True
        elif isinstance(f, Delay):
            sleep += f.seconds
        elif isinstance(f, InjectUnitAttention):
            for nx in lu.nexuses:
                if f.port is None or nx.port.index == f.port:
                    nx.post(f.asc, f.ascq)
        elif isinstance(f, Busy):
            resp = resp or Response(status=Status.BUSY)
        elif isinstance(f, TaskSetFull):
            resp = resp or Response(status=Status.TASK_SET_FULL)
        elif isinstance(f, ReservationConflict):
            resp = resp or Response(status=Status.RESERVATION_CONFLICT)
        elif isinstance(f, ResponseLost):
            lose = True
        elif isinstance(f, DriveReset):
            if lu is not lib.changer_lu:
                lib._reset_drive(lu)
        elif isinstance(f, RobotStop):
            stop = True
        elif isinstance(f, ControlPathFailure):
            lib._fail_control_path(f.control_path, f.drive_too)
        elif isinstance(f, PowerCycle):
            lib._power_cycle()
    return Decision(resp, sleep, timed_out, lose, stop)


def execute(
    lib: VirtualLibrary,
    s: Session,
    cdb: bytes,
    data_out: bytes,
    data_in_len: int,
    *,
    timeout: float,
) -> Response:
    """Run one command from a session, faults included."""
    if lib._plan is None and not lib._restore:
        with lib._lock:
            return run(lib, s, cdb, data_out, data_in_len)
    clock = lib.clock
    with lib._lock:
        now = clock.now()
        lib._restore_links(now)
        plan = lib._plan
        faults = plan.active(s.lu.name, s.port.index, cdb, data_out, now) if plan else []
        d = apply_faults(lib, s, faults) if faults else _NO_FAULT
        if d.robot_stop:
            lib._robot_stop_pending = True  # the next move (this one, if it is one) stops
        if d.response is not None:
            return d.response
    if d.timed_out:
        clock.sleep(timeout)
        return Response.failure(
            Outcome.TIMED_OUT, "simulated black hole: no answer", duration=timeout
        )
    if d.sleep:
        clock.sleep(min(d.sleep, timeout))
    with lib._lock:
        r = run(lib, s, cdb, data_out, data_in_len)
        if d.lose_response and r.outcome is Outcome.OK:
            s.lu.drop(s.nexus)
            return Response.failure(
                Outcome.LINK_LOST, "simulated loss of the response", maybe_executed=True
            )
    if d.sleep >= timeout:
        return Response.failure(
            Outcome.TIMED_OUT, "simulated delay beyond the deadline", duration=timeout
        )
    if d.sleep:
        return evolve(r, duration=d.sleep)
    return r


def _alive(port: Port) -> bool:
    return port.link_up and port.present


def run(lib: VirtualLibrary, s: Session, cdb: bytes, data_out: bytes, data_in_len: int) -> Response:
    """Deliver a command to the device (library lock held): port checks, nexus, front end."""
    port = s.port
    if not port.present:
        return Response.failure(Outcome.DEVICE_GONE, "logical unit gone", maybe_executed=False)
    if not port.link_up:
        return Response.failure(Outcome.NO_CONNECT, "link down", maybe_executed=False)
    nx = s.nexus
    if nx.lost:
        nx = s.nexus = s.lu.connect(s.initiator, port, nx.lost_ua)
    status, data, sense = lib._fronts[s.lu.name].handle(s, nx, cdb, data_out, data_in_len)
    if not _alive(port):  # cut while the command ran (a robot move)
        return Response.failure(
            Outcome.LINK_LOST, "link lost during the command", maybe_executed=True
        )
    if data_in_len:
        if len(data) > data_in_len:
            data = data[:data_in_len]
        n = len(data)
        return Response(status, data, sense, data_in_len - n, 0.0, Outcome.OK, None, n)
    return Response(status, b"", sense, 0, 0.0, Outcome.OK, None, len(data_out))
