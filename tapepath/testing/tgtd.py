"""A private tgtd (Linux SCSI target framework) instance for tests and benchmarks.

:class:`TgtdInstance` is a tgtd of this test session on its own control channel and
loopback port, with typed methods over ``tgtadm`` for targets, portals, LUNs, sessions,
target parameters and CHAP accounts. :meth:`TgtdInstance.configure_vtl` builds a
virtual tape library (a changer LUN and tape LUNs) in a temporary directory and
returns a :class:`VtlLayout` with the IQN, the LUN numbers, the element addresses and
the barcodes, so tests can build URLs such as ``iscsi://127.0.0.1:PORT/IQN/LUN``.

Example:
    >>> with TgtdInstance() as tgt:                      # doctest: +SKIP
    ...     vtl = tgt.configure_vtl(drives=2, slots=8)
    ...     url = tgt.url(vtl.changer_lun)

The code is split by responsibility: this module holds the configuration commands;
:mod:`tapepath.testing.tgtd_process` holds the process (start on a free port and
channel, stop, pause, kill, restart with replay, running ``tgtadm``) in the base class
:class:`~tapepath.testing.tgtd_process.TgtdProcess`; :mod:`tapepath.testing.tgtd_support`
holds the values, errors and listing parsers. Every public name of the three is
importable from here. The instance only ever signals the PID it started and only talks
to its own control channel. Secrets (CHAP passwords) never reach a log record or an
exception message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import structlog

from tapepath.testing.tgtd_process import TgtdProcess
from tapepath.testing.tgtd_support import (
    HOST,
    Connection,
    TgtadmError,
    TgtdError,
    VtlLayout,
    _parse_connections,
    _redact,  # noqa: F401  (kept importable here; the tests use it)
    _tgtimg,
    find_free_port,
    sid_from_tsih,
)

__all__ = [
    "HOST",
    "Connection",
    "TgtadmError",
    "TgtdError",
    "TgtdInstance",
    "TgtdProcess",
    "VtlLayout",
    "find_free_port",
    "sid_from_tsih",
]

log = structlog.get_logger("tapepath.testing.tgtd")


class TgtdInstance(TgtdProcess):
    """A tgtd process of this test session, listening on loopback only.

    Starting, stopping, the faults (:meth:`pause`, :meth:`resume`, :meth:`kill`,
    :meth:`restart`), the ports and :meth:`tgtadm` come from
    :class:`~tapepath.testing.tgtd_process.TgtdProcess`; this class adds targets,
    portals, LUNs, the virtual tape library, sessions, parameters and CHAP.

    It takes the arguments of :class:`~tapepath.testing.tgtd_process.TgtdProcess`
    (port, control_port, workdir, nop_interval, nop_count, start_timeout).
    """

    # -- targets, portals, LUNs ----------------------------------------------------

    def new_target(self, tid: int, iqn: str, *, bind_all: bool = True) -> None:
        """Create target ``tid`` named ``iqn``; with ``bind_all`` any initiator may log in."""
        self._config("--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn)
        self._tids.append(tid)
        if bind_all:
            self._config("--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL")

    def delete_target(self, tid: int) -> None:
        """Delete target ``tid`` with ``--force`` (its sessions are dropped)."""
        self._config("--op", "delete", "--mode", "target", "--tid", str(tid), "--force")
        if tid in self._tids:
            self._tids.remove(tid)

    def add_portal(self, port: int | None = None) -> int:
        """Listen on one more loopback port (a free one when None); returns the port."""
        with self._lock:
            port = port or find_free_port()
            self._config("--op", "new", "--mode", "portal", "--param", f"portal={HOST}:{port}")
            self._portals.append(port)
            return port

    def delete_portal(self, port: int) -> None:
        """Stop listening on ``port``: existing connections stay, new connects are refused."""
        with self._lock:
            self._config("--op", "delete", "--mode", "portal", "--param", f"portal={HOST}:{port}")
            if port in self._portals:
                self._portals.remove(port)

    def add_lun(
        self,
        tid: int,
        lun: int,
        backing: Path | str,
        *,
        device_type: str = "disk",
        bstype: str | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> None:
        """Add LUN ``lun`` on ``backing`` (``device_type``: disk, tape, changer, ...)."""
        args = ["--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", str(lun)]
        args += ["-b", str(backing), f"--device-type={device_type}"]
        if bstype is not None:
            args += ["-E", bstype]
        self._config(*args)
        if params:
            self.update_lun(tid, lun, params)

    def update_lun(self, tid: int, lun: int, params: Mapping[str, str | int]) -> None:
        """``--op update --mode logicalunit --params k=v,...`` for LUN ``lun``."""
        text = ",".join(f"{k}={v}" for k, v in params.items())
        self._config(
            *f"--op update --mode logicalunit --tid {tid} --lun {lun}".split(), "--params", text
        )

    def set_online(self, tid: int, lun: int, online: bool) -> None:
        """Mark a removable-medium LUN's medium present (True) or absent (False)."""
        self.update_lun(tid, lun, {"online": int(online)})

    def delete_lun(self, tid: int, lun: int) -> None:
        """Remove LUN ``lun`` from target ``tid``."""
        self._config(*f"--op delete --mode logicalunit --tid {tid} --lun {lun}".split())

    def configure_vtl(
        self,
        *,
        tid: int = 1,
        iqn: str = "iqn.2026-11.org.tapepath:vtl",
        drives: int = 2,
        slots: int = 8,
        cartridges: int | None = None,
        import_export: int = 1,
        transport_address: int = 1,
        import_export_start: int = 16,
        drive_start: int = 256,
        slot_start: int = 1024,
        barcode_format: str = "TP{:04d}L6",
        cartridge_mb: int = 64,
        disk_mb: int | None = None,
        media_dir: Path | str | None = None,
    ) -> VtlLayout:
        """Build a virtual tape library as target ``tid``.

        LUN 1 .. ``drives`` are tape drives (empty at start), the next LUN is the
        changer, and with ``disk_mb`` the one after is a sparse disk. Cartridges with
        barcodes from ``barcode_format`` fill the first ``cartridges`` slots (all but
        two when None, so moves have somewhere to go).

        Returns:
            The layout: LUNs, element addresses and barcodes.
        """
        if drives < 1 or slots < 1:
            raise ValueError("a library needs at least one drive and one slot")
        ncart = max(slots - 2, 1) if cartridges is None else cartridges
        if not 0 <= ncart <= slots:
            raise ValueError(f"cartridges must be between 0 and {slots}")
        media = Path(media_dir) if media_dir is not None else self.workdir / f"vtl{tid}"
        media.mkdir(parents=True, exist_ok=True)
        barcodes = tuple(barcode_format.format(i + 1) for i in range(ncart))
        for code in barcodes:
            _tgtimg(media / code, code, cartridge_mb)
        self.new_target(tid, iqn)
        drive_luns = tuple(range(1, drives + 1))
        for i, lun in enumerate(drive_luns):
            blank = media / f"drive{i}.img"
            _tgtimg(blank, f"DRV{i:04d}", 1)
            self.add_lun(tid, lun, blank, device_type="tape", params={"online": 0})
        changer = drives + 1
        smc = media / "smc"
        if not smc.exists():
            smc.write_bytes(bytes(1024))
        self.add_lun(tid, changer, smc, device_type="changer", params={"media_home": str(media)})
        drive_addrs = tuple(range(drive_start, drive_start + drives))
        slot_addrs = tuple(range(slot_start, slot_start + slots))
        ie_addrs = tuple(range(import_export_start, import_export_start + import_export))

        def elements(kind: int, start: int, quantity: int) -> None:
            spec = {"element_type": kind, "start_address": start, "quantity": quantity}
            self.update_lun(tid, changer, spec)

        elements(1, transport_address, 1)
        elements(2, slot_start, slots)
        if import_export:
            elements(3, import_export_start, import_export)
        elements(4, drive_start, drives)
        for addr, lun in zip(drive_addrs, drive_luns, strict=True):
            self.update_lun(
                tid, changer, {"element_type": 4, "address": addr, "tid": tid, "lun": lun}
            )
        for addr, code in zip(slot_addrs, barcodes, strict=False):
            self.update_lun(
                tid, changer, {"element_type": 2, "address": addr, "barcode": code, "sides": 1}
            )
        disk_lun: int | None = None
        if disk_mb is not None:
            disk_lun = changer + 1
            disk = media / "disk.img"
            with open(disk, "ab") as f:
                f.truncate(disk_mb * 1024 * 1024)
            self.add_lun(tid, disk_lun, disk, device_type="disk")
        layout = VtlLayout(
            tid=tid,
            iqn=iqn,
            media_dir=media,
            changer_lun=changer,
            drive_luns=drive_luns,
            transport_address=transport_address,
            drive_addresses=drive_addrs,
            slot_addresses=slot_addrs,
            import_export_addresses=ie_addrs,
            barcodes=barcodes,
            disk_lun=disk_lun,
        )
        self._iqns[tid] = iqn
        log.info("tgtd_vtl_configured", tid=tid, iqn=iqn, drives=drives, slots=slots)
        return layout

    def url(self, lun: int, *, port: int | None = None, iqn: str | None = None) -> str:
        """``iscsi://127.0.0.1:PORT/IQN/LUN`` for a LUN (first portal, VTL's IQN by default)."""
        name = iqn or next(iter(self._iqns.values()), None)
        if name is None:
            raise TgtdError("no target configured: pass iqn")
        return f"iscsi://{HOST}:{port or self._port}/{name}/{lun}"

    # -- sessions and connections ----------------------------------------------------

    def connections(self, tid: int = 1) -> list[Connection]:
        """The connections of target ``tid`` (parsed ``--op show --mode conn``)."""
        out = self.tgtadm("--op", "show", "--mode", "conn", "--tid", str(tid))
        return _parse_connections(tid, out)

    def sessions(self, tid: int = 1) -> list[int]:
        """The session ids of target ``tid``, ascending (later logins have higher ids)."""
        return sorted({c.sid for c in self.connections(tid)})

    def delete_connection(self, tid: int, sid: int, cid: int = 0) -> None:
        """Drop one connection from the target side (the initiator sees a TCP close).

        Args:
            tid: the target id.
            sid: the session id as :meth:`connections` lists it (for a TSIH seen on the
                wire, use :func:`sid_from_tsih`).
            cid: the connection id.
        """
        self.tgtadm(*f"--op delete --mode conn --tid {tid} --sid {sid} --cid {cid}".split())
        log.info("tgtd_connection_deleted", tid=tid, sid=sid, cid=cid)

    # -- target parameters, digests, CHAP ------------------------------------------

    def set_target_param(self, tid: int, name: str, value: str | int) -> None:
        """``--mode target --op update --name NAME --value VALUE``."""
        self._config(
            *f"--op update --mode target --tid {tid}".split(), "--name", name, "--value", str(value)
        )

    def target_params(self, tid: int = 1) -> dict[str, str]:
        """The ``name=value`` parameters ``--op show --mode target`` prints for ``tid``."""
        out = self.tgtadm("--op", "show", "--mode", "target", "--tid", str(tid))
        params: dict[str, str] = {}
        for line in out.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and " " not in key:
                params[key] = value
        return params

    def enable_digests(self, tid: int = 1, *, header: bool = True, data: bool = True) -> None:
        """Offer CRC32C digests (``CRC32C,None``: the initiator may still choose None)."""
        if header:
            self.set_target_param(tid, "HeaderDigest", "CRC32C,None")
        if data:
            self.set_target_param(tid, "DataDigest", "CRC32C,None")

    def require_digests(self, tid: int = 1, *, header: bool = True, data: bool = True) -> None:
        """Accept only CRC32C digests for the chosen kinds."""
        if header:
            self.set_target_param(tid, "HeaderDigest", "CRC32C")
        if data:
            self.set_target_param(tid, "DataDigest", "CRC32C")

    def set_nop_interval(self, tid: int, interval: int, count: int | None = None) -> None:
        """Send NOP-In pings every ``interval`` s; drop after ``count`` unanswered ones."""
        self.set_target_param(tid, "nop_interval", interval)
        if count is not None:
            self.set_target_param(tid, "nop_count", count)

    def add_chap(self, tid: int, user: str, password: str, *, outgoing: bool = False) -> None:
        """Create a CHAP account and bind it to ``tid``.

        Args:
            tid: the target id.
            user: the account name.
            password: its secret (never logged; tgtd wants 12 to 16 bytes for
                interoperability with strict initiators, though it accepts others).
            outgoing: the target's own account, for mutual CHAP; otherwise the
                account initiators log in with.
        """
        self._config("--op", "new", "--mode", "account", "--user", user, "--password", password)
        bind = ["--op", "bind", "--mode", "account", "--tid", str(tid), "--user", user]
        self._config(*bind, *(["--outgoing"] if outgoing else []))

    def remove_chap(self, tid: int, user: str, *, outgoing: bool = False) -> None:
        """Unbind and delete a CHAP account."""
        unbind = ["--op", "unbind", "--mode", "account", "--tid", str(tid), "--user", user]
        self._config(*unbind, *(["--outgoing"] if outgoing else []))
        self._config("--op", "delete", "--mode", "account", "--user", user)

    def accounts(self) -> list[str]:
        """The CHAP account names tgtd knows."""
        out = self.tgtadm("--op", "show", "--mode", "account")
        return [ln.strip() for ln in out.splitlines()[1:] if ln.strip()]
