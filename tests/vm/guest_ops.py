"""Steps the host runs inside the VM through the agent (``VirtualMachine.call(NAME, ...)``).

Every function takes and returns JSON values only (bytes travel as hex). They run as
root in the guest, in a chroot of this machine's file system, with the project on the
same path as on the host.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import fcntl
import os
import re
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tapepath.transport.base import Response
from tapepath.transport.sg import SgTransport
from tapepath.transport.sg_struct import SG_DXFER_FROM_DEV, SG_DXFER_NONE, SG_IO, SgIoHdr
from tapepath.transport.sysfs import list_sg_devices

_DAEMONS: dict[str, subprocess.Popen[bytes]] = {}
_TRANSPORTS: dict[tuple[str, bool], SgTransport] = {}
_BACKGROUND: dict[str, tuple[threading.Thread, threading.Event, list[dict[str, Any]]]] = {}


def _run(*argv: str, timeout: float = 60) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {res.returncode}: {res.stderr.strip()}")
    return res.stdout


# -- bring-up ----------------------------------------------------------------------


def start_iscsid() -> bool:
    """Start ``iscsid -f`` in the background and wait until iscsiadm reaches it."""
    if "iscsid" not in _DAEMONS:
        with open("/tmp/iscsid.log", "wb") as log:
            _DAEMONS["iscsid"] = subprocess.Popen(["iscsid", "-f"], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        res = subprocess.run(["iscsiadm", "-m", "session"], capture_output=True, check=False)
        if res.returncode in (0, 21):  # 21: no active sessions
            return True
        time.sleep(0.1)
    raise RuntimeError("iscsid did not answer: " + Path("/tmp/iscsid.log").read_text())


def _session_of(port: int) -> int | None:
    for conn in Path("/sys/class/iscsi_connection").glob("connection*"):
        try:
            if int((conn / "persistent_port").read_text()) == port:
                m = re.match(r"connection(\d+):", conn.name)
                return int(m.group(1)) if m else None
        except (OSError, ValueError):
            continue
    return None


def login(
    iqn: str, host: str, ports: list[int], replacement_timeout: int, expect_nodes: int
) -> list[int]:
    """Log in to ``iqn`` at each ``host:port`` (node records made by hand), in order.

    Returns:
        The iSCSI session number of each portal, in ``ports`` order.
    """
    sessions: list[int] = []
    for port in ports:
        portal = f"{host}:{port}"
        _run("iscsiadm", "-m", "node", "-o", "new", "-T", iqn, "-p", portal)
        for name, value in (
            ("node.session.timeo.replacement_timeout", str(replacement_timeout)),
            ("node.conn[0].timeo.noop_out_interval", "2"),
            ("node.conn[0].timeo.noop_out_timeout", "2"),
            ("node.session.initial_login_retry_max", "2"),
        ):
            _run("iscsiadm", "-m", "node", "-T", iqn, "-p", portal, "-o", "update",
                 "-n", name, "-v", value)  # fmt: skip
        _run("iscsiadm", "-m", "node", "-T", iqn, "-p", portal, "--login")
        sid = _session_of(port)
        if sid is None:
            raise RuntimeError(f"no session for {portal} after login")
        sessions.append(sid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = list(Path("/sys/class/scsi_generic").glob("sg*"))
        if len(nodes) >= expect_nodes and all(Path("/dev", n.name).exists() for n in nodes):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"expected {expect_nodes} sg nodes, have {len(nodes)}")
    return sessions


def set_recovery_tmo(session: int, seconds: int) -> int:
    """Set a session's replacement timeout through sysfs; return the value read back."""
    p = Path(f"/sys/class/iscsi_session/session{session}/recovery_tmo")
    p.write_text(str(seconds))
    return int(p.read_text())


def session_state(session: int) -> str:
    """The session's state in sysfs (LOGGED_IN, FAILED, FREE ...)."""
    return Path(f"/sys/class/iscsi_session/session{session}/state").read_text().strip()


# -- enumeration -------------------------------------------------------------------


def _session_of_node(name: str) -> int | None:
    real = os.path.realpath(f"/sys/class/scsi_generic/{name}/device")
    m = re.search(r"/session(\d+)/", real)
    return int(m.group(1)) if m else None


def list_paths() -> list[dict[str, Any]]:
    """Every sg node as tapepath's sysfs enumeration sees it, with its iSCSI session."""
    out = []
    for dev in list_sg_devices():
        out.append(
            {
                "name": dev.name,
                "path": dev.path,
                "hctl": None if dev.address is None else str(dev.address),
                "type": dev.peripheral_type,
                "vendor": dev.vendor,
                "product": dev.product,
                "serial": dev.serial,
                "identifier": dev.identifier,
                "vpd_pg83": None if dev.vpd_pg83 is None else dev.vpd_pg83.hex(),
                "session": _session_of_node(dev.name),
                "from_inquiry": list(dev.from_inquiry),
                "state": dev.state,
                "tape_nodes": list(dev.tape_nodes),
                "changer_nodes": list(dev.changer_nodes),
            }
        )
    return out


# -- commands through tapepath -------------------------------------------------------


def _transport(path: str, watch: bool = False) -> SgTransport:
    """The cached transport of ``path``; ``watch``: with the sysfs state watch (the default
    of SgTransport), else deadline-only (what test_vm.py records the kernel phases with).
    """
    t = _TRANSPORTS.get((path, watch))
    if t is None:
        interval = 0.05 if watch else None
        t = _TRANSPORTS[path, watch] = SgTransport(path, state_interval=interval)
    return t


def _response(r: Response) -> dict[str, Any]:
    detail = None
    if r.detail is not None:
        d = r.detail
        detail = {
            "message": d.message,
            "maybe_executed": d.maybe_executed,
            "errno": d.errno,
            "host_status": d.host_status,
            "driver_status": d.driver_status,
        }
    return {
        "outcome": r.outcome.value,
        "status": int(r.status),
        "data": r.data.hex(),
        "sense": r.sense.hex(),
        "residual": r.residual,
        "duration": r.duration,
        "detail": detail,
    }


def execute(
    path: str,
    cdb: str,
    data_in_len: int = 0,
    data_out: str = "",
    timeout: float = 30.0,
    watch: bool = False,
) -> dict[str, Any]:
    """Run one command through tapepath's SgTransport; the whole Response as JSON.

    ``watch``: use the transport with its device-state watch (off by default here, so
    the phases test sees what the kernel alone does).
    """
    t = _transport(path, watch)
    r = t.execute(
        bytes.fromhex(cdb), data_in_len=data_in_len, data_out=bytes.fromhex(data_out),
        timeout=timeout,
    )  # fmt: skip
    return _response(r)


def start_writer(path: str, block_bytes: int = 256 * 1024, timeout: float = 30.0) -> bool:
    """Keep WRITE(10)s going to a disk node in a thread until one fails as a path failure.

    A unit attention is skipped; the first path failure (the command that was in
    flight when the path was cut) ends the loop. See :func:`stop_writer`.
    """
    stop = threading.Event()
    results: list[dict[str, Any]] = []

    def run() -> None:
        blocks = block_bytes // 512
        data = bytes(block_bytes)
        writes = 0
        with SgTransport(path) as t:
            lba = 0
            while not stop.is_set():
                cdb = bytes([0x2A, 0]) + lba.to_bytes(4, "big") + bytes([0])
                cdb += blocks.to_bytes(2, "big") + bytes([0])
                r = t.execute(cdb, data_out=data, timeout=timeout)
                writes += 1
                lba = (lba + blocks) % (4 * blocks)
                if r.path_failed:
                    results.append(_response(r))
                    break
        results.append({"writes": writes})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _BACKGROUND["writer"] = (thread, stop, results)
    return True


def stop_writer(wait: float = 30.0) -> list[dict[str, Any]]:
    """Stop the writer (after ``wait`` seconds at most) and return what it recorded."""
    thread, stop, results = _BACKGROUND.pop("writer")
    thread.join(wait)
    stop.set()
    thread.join(5)
    return list(results)


def close_transports() -> int:
    """Close every cached transport; returns how many there were."""
    n = len(_TRANSPORTS)
    for t in _TRANSPORTS.values():
        t.close()
    _TRANSPORTS.clear()
    return n


def close_devices() -> int:
    """Close the devices :func:`discover_devices` keeps (their transports hold sg nodes)."""
    n = len(_DEVICES)
    for dev in _DEVICES.values():
        dev.close()
    _DEVICES.clear()
    return n


# -- the raw kernel answer, for recording the phases of a cut path -------------------


def raw_sg_io(path: str, cdb: str, data_in_len: int = 0, timeout_ms: int = 10000) -> dict[str, Any]:
    """One synchronous SG_IO ioctl, everything the kernel returned, nothing interpreted."""
    cdb_b = bytes.fromhex(cdb)
    cdb_buf = ctypes.create_string_buffer(cdb_b, len(cdb_b))
    sense = ctypes.create_string_buffer(64)
    data = ctypes.create_string_buffer(max(data_in_len, 1))
    hdr = SgIoHdr()
    hdr.interface_id = ord("S")
    hdr.dxfer_direction = SG_DXFER_FROM_DEV if data_in_len else SG_DXFER_NONE
    hdr.cmd_len = len(cdb_b)
    hdr.mx_sb_len = 64
    hdr.dxfer_len = data_in_len
    hdr.dxferp = ctypes.cast(data, ctypes.c_void_p) if data_in_len else None
    hdr.cmdp = ctypes.cast(cdb_buf, ctypes.c_void_p)
    hdr.sbp = ctypes.cast(sense, ctypes.c_void_p)
    hdr.timeout = timeout_ms
    start = time.monotonic()
    err = 0
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError as e:
        return {"open_errno": errno_mod.errorcode.get(e.errno or 0, e.errno), "seconds": 0.0}
    try:
        fcntl.ioctl(fd, SG_IO, hdr)  # type: ignore[call-overload]
    except OSError as e:
        err = e.errno or 0
    finally:
        os.close(fd)
    return {
        "errno": errno_mod.errorcode.get(err, err) if err else 0,
        "status": hdr.status,
        "host_status": hdr.host_status,
        "driver_status": hdr.driver_status,
        "sense": sense.raw[: hdr.sb_len_wr].hex(),
        "resid": hdr.resid,
        "duration_ms": hdr.duration,
        "info": hdr.info,
        "seconds": round(time.monotonic() - start, 3),
    }


# -- sg3_utils and benchmarks ---------------------------------------------------------


def sg_tool(argv: list[str], timeout: float = 120) -> dict[str, Any]:
    """Run an sg3_utils tool; rc, output and the wall time."""
    start = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return {
        "rc": res.returncode,
        "stdout": res.stdout,
        "stderr": res.stderr,
        "seconds": time.monotonic() - start,
    }


def tur_loop(path: str, n: int) -> dict[str, Any]:
    """``n`` TEST UNIT READY through one SgTransport; wall time and failures."""
    cdb = bytes(6)
    bad = 0
    with SgTransport(path) as t:
        t.execute(cdb, timeout=10)
        start = time.perf_counter()
        for _ in range(n):
            if not t.execute(cdb, timeout=10).ok:
                bad += 1
        seconds = time.perf_counter() - start
    return {"n": n, "seconds": seconds, "failed": bad}


def _tur_header() -> tuple[SgIoHdr, tuple[ctypes.Array[ctypes.c_char], ...]]:
    """An sg_io_hdr for TEST UNIT READY (10 s timeout) and the buffers it points at."""
    cdb = ctypes.create_string_buffer(bytes(6), 6)
    sense = ctypes.create_string_buffer(32)
    hdr = SgIoHdr()
    hdr.interface_id = ord("S")
    hdr.dxfer_direction = SG_DXFER_NONE
    hdr.cmd_len = 6
    hdr.mx_sb_len = 32
    hdr.cmdp = ctypes.cast(cdb, ctypes.c_void_p)
    hdr.sbp = ctypes.cast(sense, ctypes.c_void_p)
    hdr.timeout = 10000
    return hdr, (cdb, sense)


def ioctl_tur_loop(path: str, n: int) -> dict[str, Any]:
    """``n`` TEST UNIT READY as bare synchronous SG_IO ioctls from Python (a floor)."""
    hdr, _buffers = _tur_header()
    fd = os.open(path, os.O_RDWR)
    bad = 0
    try:
        ioctl = fcntl.ioctl
        start = time.perf_counter()
        for _ in range(n):
            ioctl(fd, SG_IO, hdr)  # type: ignore[call-overload]
            if hdr.status or hdr.host_status or hdr.driver_status:
                bad += 1
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
    return {"n": n, "seconds": seconds, "failed": bad}


def async_tur_loop(path: str, n: int, respond: bool = False) -> dict[str, Any]:
    """``n`` TEST UNIT READY as bare write/poll/readv from Python: the floor of the
    asynchronous interface SgTransport uses (no locks, no checks, no Response); with
    ``respond``, plus the one Response per command the transport contract asks for."""
    hdr, _buffers = _tur_header()
    done = SgIoHdr()
    into = [done]
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    bad = 0
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poll, write, readv = poller.poll, os.write, os.readv
        start = time.perf_counter()
        if respond:
            clock = time.monotonic
            for _ in range(n):
                t0 = clock()
                write(fd, hdr)
                poll(10000)
                readv(fd, into)
                Response(duration=clock() - t0)
        else:
            for _ in range(n):
                write(fd, hdr)
                poll(10000)
                readv(fd, into)
        seconds = time.perf_counter() - start
        if done.status or done.host_status or done.driver_status:
            bad += 1
    finally:
        os.close(fd)
    return {"n": n, "seconds": seconds, "failed": bad}


# -- tapepath's multipath layer over the sg nodes ----------------------------------------

_DEVICES: dict[str, Any] = {}


def discover_devices() -> list[dict[str, Any]]:
    """``tapepath.discover(["sg"])`` in the guest: each device's type and path URLs."""
    from tapepath.multipath.discovery import discover  # noqa: PLC0415  (slow import)

    for dev in _DEVICES.values():
        dev.close()
    _DEVICES.clear()
    out = []
    for dev in discover(["sg"], monitor=False):
        urls = [p.url for p in dev.paths]
        _DEVICES[urls[0]] = dev
        out.append({"device_type": dev.device_type, "designator": dev.designator, "urls": urls})
    return out


def mp_execute(key: str, cdb: str, data_in_len: int = 0, timeout: float = 30.0) -> dict[str, Any]:
    """One command through a discovered MultipathDevice; the Response and the path used."""
    dev = _DEVICES[key]
    r = dev.execute(bytes.fromhex(cdb), data_in_len=data_in_len, timeout=timeout)
    out = _response(r)
    current = dev.current_path
    out["current"] = None if current is None else current.url
    out["states"] = {p.url: p.state.value for p in dev.paths}
    return out


def execute_fresh(path: str, cdb: str, timeout: float = 10.0) -> dict[str, Any]:
    """Open a new SgTransport on ``path``, run one no-data command, close it."""
    try:
        with SgTransport(path) as t:
            return _response(t.execute(bytes.fromhex(cdb), timeout=timeout))
    except Exception as e:  # the open itself may fail: report it as data
        return {"outcome": "open_failed", "error": f"{type(e).__name__}: {e}"}


# -- device state, notification and fencing -------------------------------------------

_HELD: dict[str, tuple[threading.Thread, list[dict[str, Any]]]] = {}


def states(path: str) -> dict[str, Any]:
    """The sysfs device state of an sg node and its iSCSI session's state (None if unreadable)."""
    from tapepath.transport.sg_state import DeviceStateWatch  # noqa: PLC0415

    watch = DeviceStateWatch(os.path.basename(path))
    return {"device": watch.device_state(), "session": watch.session_state()}


def write_state(path: str, value: str) -> dict[str, Any]:
    """Write ``value`` to the node's device/state: the errno name (0: accepted), the state."""
    target = Path(f"/sys/class/scsi_generic/{os.path.basename(path)}/device/state")
    err: object = 0
    try:
        target.write_text(value if value.endswith("\n") else value + "\n")
    except OSError as e:
        err = errno_mod.errorcode.get(e.errno or 0, e.errno)
    return {"errno": err, "state": states(path)["device"]}


def start_raw(name: str, path: str, cdb: str, timeout_ms: int = 300000) -> bool:
    """Run :func:`raw_sg_io` in a thread (a command the kernel may hold); see :func:`raw_result`."""
    results: list[dict[str, Any]] = []

    def run() -> None:
        results.append(raw_sg_io(path, cdb, timeout_ms=timeout_ms))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _HELD[name] = (thread, results)
    return True


def raw_result(name: str, wait: float = 0.0) -> dict[str, Any] | None:
    """The answer of a :func:`start_raw` command, None while it is still held."""
    thread, results = _HELD[name]
    thread.join(wait)
    if thread.is_alive():
        return None
    _HELD.pop(name)
    return results[0] if results else {"error": "the thread recorded nothing"}


def fence_path(path: str) -> dict[str, Any]:
    """``SgTransport.fence()`` on the node's cached transport."""
    r = _transport(path, True).fence()
    return {"done": r.done, "state": r.state, "reason": r.reason, "errno": r.errno}


def unfence_path(path: str) -> dict[str, Any]:
    """``SgTransport.unfence()`` on the node's cached transport."""
    r = _transport(path, True).unfence()
    return {"done": r.done, "state": r.state, "reason": r.reason, "errno": r.errno}
