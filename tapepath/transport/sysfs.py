"""Enumerate Linux SCSI generic devices from sysfs (``/sys/class/scsi_generic``).

For each ``sgN`` the kernel publishes, :func:`list_sg_devices` reports the SCSI address
(H:C:T:L), the peripheral device type, vendor, product, revision, the unit serial number
(VPD page 80h), the device identification page (83h, parsed with
:mod:`tapepath.scsi.vpd`; its logical unit designator groups the paths of one device)
and the st/nst/sch nodes of the same logical unit. When sysfs lacks an attribute (old
kernels, pages the kernel did not cache), the missing facts are asked from the device
with INQUIRY through a transport; a device that cannot be asked keeps ``None`` there.

The sysfs and /dev roots are parameters, so the same code runs in a chroot with /sys
bind-mounted, and tests can use a fake tree.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import structlog
from attrs import evolve, field, frozen

from tapepath.errors import DecodeError, TapepathError
from tapepath.scsi.inquiry import Inquiry, StandardInquiry
from tapepath.scsi.vpd import DeviceIdentification, UnitSerialNumber
from tapepath.transport.base import Transport

__all__ = [
    "ScsiAddress",
    "SgDevice",
    "device_from_inquiry",
    "group_by_identifier",
    "list_sg_devices",
]

log = structlog.get_logger("tapepath.transport.sysfs")

_SG_NAME = re.compile(r"sg(\d+)$")
_HCTL = re.compile(r"(\d+):(\d+):(\d+):(\d+)$")
_TAPE_NAME = re.compile(r"n?st\d+$")
_CHANGER_NAME = re.compile(r"sch\d+$")
_MAX_ATTR = 1 << 16  # sysfs attributes are at most a page; VPD pages at most 64 KiB

Opener = Callable[[str], Transport]


@frozen(order=True)
class ScsiAddress:
    """A SCSI address as Linux numbers it: host, channel, target, LUN."""

    host: int
    channel: int
    target: int
    lun: int

    @classmethod
    def parse(cls, text: str) -> ScsiAddress:
        """Parse ``"H:C:T:L"``.

        Raises:
            ValueError: not four colon-separated decimal numbers.
        """
        m = _HCTL.match(text.strip())
        if m is None:
            raise ValueError(f"not a SCSI address H:C:T:L: {text!r}")
        return cls(*(int(g) for g in m.groups()))

    def __str__(self) -> str:
        return f"{self.host}:{self.channel}:{self.target}:{self.lun}"


@frozen
class SgDevice:
    """One SCSI generic node and what is known about its logical unit.

    Attributes:
        name: the kernel name (``sg3``).
        path: the device node (``/dev/sg3`` under the /dev root given).
        address: H:C:T:L, when sysfs has it.
        peripheral_type: the peripheral device type (1 tape, 8 changer), when known.
        vendor: T10 vendor identification, stripped (None when unknown).
        product: product identification, stripped.
        revision: product revision level, stripped.
        serial: the unit serial number from VPD page 80h.
        vpd_pg80: the raw page 80h.
        vpd_pg83: the raw page 83h.
        identification: page 83h parsed (None when absent or malformed).
        tape_nodes: st/nst names of the same logical unit (``("nst0", "st0")``).
        changer_nodes: sch names of the same logical unit.
        state: the SCSI device state (``running``, ``offline``, ``blocked``...).
        from_inquiry: names of the attributes that came from INQUIRY, not sysfs.
    """

    name: str
    path: str
    address: ScsiAddress | None = None
    peripheral_type: int | None = None
    vendor: str | None = None
    product: str | None = None
    revision: str | None = None
    serial: str | None = None
    vpd_pg80: bytes | None = None
    vpd_pg83: bytes | None = None
    identification: DeviceIdentification | None = None
    tape_nodes: tuple[str, ...] = ()
    changer_nodes: tuple[str, ...] = ()
    state: str | None = None
    from_inquiry: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        """The ``sg:`` URL of the node."""
        return f"sg://{self.path}"

    @property
    def identifier(self) -> str | None:
        """The logical unit's best designator from page 83h, as text (groups paths)."""
        if self.identification is None:
            return None
        d = self.identification.logical_unit_designator()
        if d is None:
            return None
        try:
            return str(d)
        except (DecodeError, ValueError):
            return f"{int(d.designator_type)}:{d.identifier.hex()}"

    @property
    def number(self) -> int:
        """N of ``sgN``."""
        m = _SG_NAME.match(self.name)
        return int(m.group(1)) if m else -1


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read(_MAX_ATTR)
    except OSError:
        return None


def _text(path: Path) -> str | None:
    raw = _read(path)
    if raw is None:
        return None
    return raw.decode("ascii", errors="replace").strip(" \0\n\t")


def _address(sg_dir: Path) -> ScsiAddress | None:
    for link in (sg_dir / "device", sg_dir):
        try:
            return ScsiAddress.parse(os.path.basename(os.path.realpath(link)))
        except (ValueError, OSError):
            continue
    return None


def _related(device: Path, subdir: str, prefix: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    names: set[str] = set()
    with contextlib.suppress(OSError):
        names.update(os.listdir(device / subdir))
    with contextlib.suppress(OSError):
        names.update(n.split(":", 1)[1] for n in os.listdir(device) if n.startswith(prefix + ":"))
    return tuple(sorted(n for n in names if pattern.match(n)))


def _parse_pg80(raw: bytes | None) -> str | None:
    if not raw:
        return None
    try:
        return UnitSerialNumber.from_bytes(raw).serial_number
    except (DecodeError, ValueError):
        return None


def _parse_pg83(raw: bytes | None) -> DeviceIdentification | None:
    if not raw:
        return None
    try:
        return DeviceIdentification.from_bytes(raw)
    except (DecodeError, ValueError):
        return None


def _from_sysfs(sg_dir: Path, name: str, dev_root: str) -> SgDevice:
    device = sg_dir / "device"
    type_text = _text(device / "type")
    try:
        ptype: int | None = int(type_text) if type_text is not None else None
    except ValueError:
        ptype = None
    if ptype is not None and not 0 <= ptype <= 0x1F:
        ptype = None
    pg80 = _read(device / "vpd_pg80") or None
    pg83 = _read(device / "vpd_pg83") or None
    return SgDevice(
        name=name,
        path=os.path.join(dev_root, name),
        address=_address(sg_dir),
        peripheral_type=ptype,
        vendor=_text(device / "vendor"),
        product=_text(device / "model"),
        revision=_text(device / "rev"),
        serial=_parse_pg80(pg80),
        vpd_pg80=pg80,
        vpd_pg83=pg83,
        identification=_parse_pg83(pg83),
        tape_nodes=_related(device, "scsi_tape", "scsi_tape", _TAPE_NAME),
        changer_nodes=_related(device, "scsi_changer", "scsi_changer", _CHANGER_NAME),
        state=_text(device / "state"),
    )


def _inquire(t: Transport, evpd: bool, page: int, timeout: float) -> bytes | None:
    cdb = Inquiry(evpd=evpd, page_code=page, allocation_length=0xFFFF if evpd else 255)
    r = t.execute(cdb.to_bytes(), data_in_len=cdb.allocation_length, timeout=timeout)
    return r.data if r.ok and r.data else None


def device_from_inquiry(dev: SgDevice, transport: Transport, timeout: float = 10.0) -> SgDevice:
    """Fill what ``dev`` lacks with INQUIRY (standard data, VPD 80h, VPD 83h).

    Args:
        dev: what sysfs gave.
        transport: an open transport to the device.
        timeout: seconds per command.

    Returns:
        ``dev`` with the missing attributes filled in where the device answered, and
        their names in ``from_inquiry``.
    """
    changes: dict[str, object] = {}
    if None in (dev.peripheral_type, dev.vendor, dev.product, dev.revision):
        raw = _inquire(transport, False, 0, timeout)
        if raw is not None:
            try:
                std = StandardInquiry.from_bytes(raw)
            except (DecodeError, ValueError):
                std = None
            if std is not None:
                values = {
                    "peripheral_type": int(std.peripheral_device_type),
                    "vendor": _strip(std.vendor_raw),
                    "product": _strip(std.product_raw),
                    "revision": _strip(std.revision_raw),
                }
                changes.update({k: v for k, v in values.items() if getattr(dev, k) is None})
    if dev.vpd_pg80 is None:
        pg80 = _inquire(transport, True, 0x80, timeout)
        if pg80 is not None:
            changes["vpd_pg80"] = pg80
            changes["serial"] = _parse_pg80(pg80)
    if dev.vpd_pg83 is None:
        pg83 = _inquire(transport, True, 0x83, timeout)
        if pg83 is not None:
            changes["vpd_pg83"] = pg83
            changes["identification"] = _parse_pg83(pg83)
    if not changes:
        return dev
    names = tuple(sorted(k for k in changes if k not in ("serial", "identification")))
    return evolve(dev, **changes, from_inquiry=names)  # type: ignore[arg-type]


def _strip(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").strip(" \0")


def _needs_inquiry(dev: SgDevice) -> bool:
    return None in (dev.peripheral_type, dev.vendor, dev.vpd_pg80, dev.vpd_pg83)


def _default_opener(path: str) -> Transport:
    from tapepath.transport.sg import SgTransport  # noqa: PLC0415  (only when needed)

    return SgTransport(path)


def list_sg_devices(
    sysfs_root: str | os.PathLike[str] = "/sys",
    dev_root: str = "/dev",
    *,
    inquiry: bool = True,
    opener: Opener | None = None,
    timeout: float = 10.0,
) -> list[SgDevice]:
    """List the SCSI generic devices, in sgN order.

    Args:
        sysfs_root: where sysfs is mounted.
        dev_root: where the device nodes are.
        inquiry: ask the device with INQUIRY for what sysfs lacks.
        opener: opens a transport for a node path (an :class:`SgTransport` by default).
        timeout: seconds per INQUIRY.

    Returns:
        One :class:`SgDevice` per node; an empty list when there is no sg class.
    """
    class_dir = Path(sysfs_root) / "class" / "scsi_generic"
    try:
        names = [n for n in os.listdir(class_dir) if _SG_NAME.match(n)]
    except OSError:
        return []
    names.sort(key=lambda n: int(n[2:]))
    found = []
    for name in names:
        dev = _from_sysfs(class_dir / name, name, dev_root)
        if inquiry and _needs_inquiry(dev):
            dev = _fill(dev, opener or _default_opener, timeout)
        found.append(dev)
    return found


def _fill(dev: SgDevice, opener: Opener, timeout: float) -> SgDevice:
    try:
        t = opener(dev.path)
    except (TapepathError, OSError) as exc:
        log.debug("sysfs_inquiry_skipped", node=dev.name, error=str(exc))
        return dev
    try:
        return device_from_inquiry(dev, t, timeout)
    except (TapepathError, OSError) as exc:
        log.debug("sysfs_inquiry_failed", node=dev.name, error=str(exc))
        return dev
    finally:
        t.close()


def group_by_identifier(devices: list[SgDevice]) -> dict[str, list[SgDevice]]:
    """Group the paths of each logical unit by the page 83h logical-unit designator.

    Args:
        devices: as :func:`list_sg_devices` returns them.

    Returns:
        Identifier text to the nodes that report it, in the order given. A node without
        an identifier is its own group, keyed by its URL (``sg:///dev/sg5``).
    """
    groups: dict[str, list[SgDevice]] = {}
    for dev in devices:
        groups.setdefault(dev.identifier or dev.url, []).append(dev)
    return groups
