"""Discovery: find every path, group the paths of each logical unit into one device.

``discover(sources)`` accepts, in any mix:

- path URLs (``sg:///dev/sg3``, ``iscsi://host/iqn/lun``, ``sim://NAME/DEVICE?port=N``):
  that one path;
- ``"sim://NAME"``: every port of every device of the registered VirtualLibrary NAME;
- ``"sg"`` (or ``"sysfs"``): every SCSI generic node the Linux sysfs lists;
- ``"iscsi://host[:port]"`` (a portal, no target): SendTargets on the portal, then
  REPORT LUNS on each target, one path per LUN.

Each path is asked who it reaches (:func:`tapepath.multipath.identify.identify`, INQUIRY
only) and paths are grouped by (peripheral device type, logical-unit designator), so a
changer and the drive that hosts it never merge even if they report the same identifier.
A path that names no logical unit at all becomes a device of its own. Priorities come
from the policy (direct ``sg`` paths above remote ``iscsi`` ones by default, so a served
path stays as a hidden alternate). The raw paths are only reachable through their
device. A :class:`Discovery` keeps its devices, so a path found by a later scan joins
the device it belongs to (hot add).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from tapepath.errors import DecodeError, TapepathError
from tapepath.multipath.config import Config, load_config
from tapepath.multipath.device import MultipathDevice
from tapepath.multipath.handlers import handler_for
from tapepath.multipath.identify import PathInfo, identify
from tapepath.multipath.lazy import open_or_defer
from tapepath.multipath.path import Path, PathIdentity
from tapepath.multipath.policy import MultipathPolicy
from tapepath.multipath.redact import redact_url
from tapepath.transport.base import Response, Transport
from tapepath.transport.registry import open_transport

if TYPE_CHECKING:
    from tapepath.multipath.monitor import PathMonitor

__all__ = ["Discovery", "discover", "expand_source", "open_device"]

log = structlog.get_logger("tapepath.multipath.discovery")

Opener = Callable[[str], Transport]

_TIMEOUT = 10.0


def _sim_urls(name: str) -> list[str]:
    from tapepath.testing.library import lookup  # noqa: PLC0415  (testing code, lazily)

    lib = lookup(name)
    urls = list(lib.changer_urls())
    for i in range(len(lib.drive_lus)):
        urls.extend(lib.drive_urls(i))
    return urls


def _sg_urls(sysfs_root: str, dev_root: str) -> list[str]:
    from tapepath.transport.sysfs import list_sg_devices  # noqa: PLC0415  (Linux only)

    return [d.url for d in list_sg_devices(sysfs_root, dev_root, inquiry=False)]


def _iscsi_urls(portal: str, opener: Opener) -> list[str]:
    from tapepath.iscsi.driver import discover_targets  # noqa: PLC0415  (needs the iSCSI layer)
    from tapepath.iscsi.url import parse_iscsi_url  # noqa: PLC0415
    from tapepath.scsi.luns import LunList, ReportLuns  # noqa: PLC0415
    from tapepath.transport.iscsi import options_from_url  # noqa: PLC0415

    base, _, query = portal.partition("?")
    base = base.rstrip("/")
    tail = f"?{query}" if query else ""
    urls: list[str] = []
    for iqn, _addresses in discover_targets(options_from_url(parse_iscsi_url(portal))):
        lun0 = f"{base}/{iqn}/0{tail}"
        numbers: Sequence[int] = (0,)
        t = opener(lun0)
        try:
            cmd = ReportLuns()
            r = t.execute(cmd.to_bytes(), data_in_len=cmd.allocation_length, timeout=_TIMEOUT)
            if r.ok:
                numbers = LunList.from_bytes(r.data).numbers or (0,)
        except DecodeError as exc:
            log.warning("report_luns_bad_data", target=iqn, error=str(exc))
        finally:
            t.close()
        urls.extend(f"{base}/{iqn}/{n}{tail}" for n in numbers)
    return urls


def expand_source(
    source: str,
    *,
    opener: Opener = open_transport,
    sysfs_root: str = "/sys",
    dev_root: str = "/dev",
) -> list[str]:
    """The path URLs a discovery source stands for (see the module doc).

    ``sysfs_root`` and ``dev_root`` are where the ``sg`` source looks (a chroot or a
    test tree may put them elsewhere).

    Raises:
        ValueError: the source is not understood.
        LookupError: a ``sim://NAME`` library is not registered.
    """
    s = source.strip()
    if s in ("sg", "sysfs"):
        return _sg_urls(sysfs_root, dev_root)
    scheme, sep, rest = s.partition("://")
    if not sep:
        raise ValueError(f"not a discovery source: {source!r} (a URL, 'sg' or 'sysfs')")
    scheme = scheme.lower()
    if scheme == "sim" and "/" not in rest.strip("/"):
        return _sim_urls(rest.strip("/"))
    if scheme == "iscsi":
        _, _, path = rest.partition("?")[0].partition("/")
        if not path.strip("/"):
            return _iscsi_urls(s, opener)
    return [s]


class Discovery:
    """Discovered devices, kept so that later scans add paths to them (hot add).

    Args:
        policy: the policy of new devices (priorities included); keyword settings apply
            over it.
        monitor: passed to each new :class:`MultipathDevice` (True: the shared monitor).
        opener: opens a transport from a URL.
        sysfs_root: where the ``sg`` source reads sysfs.
        dev_root: where the ``sg`` source finds the device nodes.
        **settings: flat policy settings.
    """

    def __init__(
        self,
        *,
        policy: MultipathPolicy | None = None,
        monitor: PathMonitor | bool | None = True,
        opener: Opener = open_transport,
        sysfs_root: str = "/sys",
        dev_root: str = "/dev",
        **settings: Any,
    ) -> None:
        self.sysfs_root = sysfs_root
        self.dev_root = dev_root
        pol = policy if policy is not None else MultipathPolicy()
        self.policy = pol.updated(**settings) if settings else pol
        self.monitor = monitor
        self.opener = opener
        self._lock = threading.Lock()
        self._devices: dict[tuple[int, str], MultipathDevice] = {}
        self._loose: list[MultipathDevice] = []
        self._urls: set[str] = set()

    @property
    def devices(self) -> list[MultipathDevice]:
        """Every device found so far, in the order found."""
        with self._lock:
            return [*self._devices.values(), *self._loose]

    def scan(self, sources: Iterable[str]) -> list[MultipathDevice]:
        """Find the paths of ``sources`` and add them to their devices.

        Paths already known are skipped; a path that fails INQUIRY is logged and left
        out. Returns every device (old and new).
        """
        for source in sources:
            try:
                urls = expand_source(
                    source, opener=self.opener, sysfs_root=self.sysfs_root, dev_root=self.dev_root
                )
            except (TapepathError, OSError, LookupError) as exc:
                log.warning("discovery_source_failed", source=redact_url(source), error=_clean(exc))
                continue
            for url in urls:
                self._add_url(url)
        return self.devices

    def _add_url(self, url: str) -> None:
        with self._lock:
            if url in self._urls:
                return
        try:
            transport = self.opener(url)
        except (TapepathError, OSError, ValueError) as exc:
            log.warning("discovery_open_failed", path=redact_url(url), error=_clean(exc))
            return

        try:
            info = identify(_sender(transport))
        except DecodeError as exc:
            log.warning("discovery_identify_failed", path=redact_url(url), error=_clean(exc))
            transport.close()
            return
        if info.qualifier != 0:  # no logical unit connected here
            transport.close()
            return
        self._place(transport, info)

    def _place(self, transport: Transport, info: PathInfo) -> None:
        url = transport.url
        path = Path(
            transport,
            PathIdentity(
                designator=info.key,
                relative_port=info.relative_port,
                port_group=info.port_group,
                priority=self.policy.priority_for(url),
            ),
        )
        with self._lock:
            self._urls.add(url)
            key = (info.device_type, info.key) if info.key is not None else None
            existing = self._devices.get(key) if key is not None else None
        if existing is not None:
            existing.add_path(path, "hot add: same logical unit")
            if existing.handler.name == "alua":  # learn the new port's group and state
                existing.handler.attach(existing)
            log.info("discovery_path_joined", device=existing.name, path=url)
            return
        device = MultipathDevice(
            [path],
            name=_name(info, url),
            device_type=info.device_type,
            designator=info.key,
            policy=self.policy,
            handler=handler_for(vendor=info.vendor, product=info.product, tpgs=info.tpgs),
            monitor=self.monitor,
        )
        with self._lock:
            if key is not None:
                self._devices[key] = device
            else:
                self._loose.append(device)
        log.info(
            "discovery_device_found",
            device=device.name,
            device_type=info.device_type,
            designator=info.key,
            path=url,
        )


def _clean(exc: BaseException) -> str:
    return redact_url(str(exc))


def _sender(t: Transport) -> Callable[[bytes, int], Response]:
    def send(cdb: bytes, n: int) -> Response:
        return t.execute(cdb, data_in_len=n, timeout=_TIMEOUT)

    return send


def _name(info: PathInfo, url: str) -> str:
    kind = {1: "tape", 8: "changer"}.get(info.device_type, f"type{info.device_type}")
    return f"{kind}:{info.key}" if info.key else f"{kind}:{url}"


def discover(
    sources: Iterable[str],
    *,
    policy: MultipathPolicy | None = None,
    monitor: PathMonitor | bool | None = True,
    **settings: Any,
) -> list[MultipathDevice]:
    """Find the devices behind ``sources``, one :class:`MultipathDevice` per logical unit.

    Args:
        sources: path URLs, ``sim://NAME``, ``sg``/``sysfs``, iSCSI portals.
        policy: the policy of the devices; keyword settings apply over it.
        monitor: True for the shared background monitor (the default), False for none.
        **settings: flat policy settings (``no_path=30``, ``selector=...``).

    Returns:
        The devices, each with ``.paths`` and ``.device_type``.
    """
    return Discovery(policy=policy, monitor=monitor, **settings).scan(sources)


def open_device(
    paths_or_alias: str | Sequence[str],
    *,
    config: Config | None = None,
    monitor: PathMonitor | bool | None = True,
    **settings: Any,
) -> MultipathDevice:
    """Open one device from a list of path URLs or a configuration alias.

    Args:
        paths_or_alias: path URLs of one logical unit, or an alias of the configuration.
        config: the configuration (default: :func:`load_config` of the default file,
            read only when an alias is given).
        monitor: True for the shared background monitor.
        **settings: flat policy settings over the configured ones.

    Raises:
        ConfigError: an unknown alias or a bad setting.
    """
    handler_name: str | None = None
    device_type: int | None = None
    if isinstance(paths_or_alias, str) and "://" not in paths_or_alias:
        cfg = config if config is not None else load_config()
        dc = cfg.device(paths_or_alias)
        urls: Sequence[str] = dc.paths
        policy = dc.policy
        handler_name, device_type = dc.handler, dc.device_type
        name = paths_or_alias
    else:
        urls = [paths_or_alias] if isinstance(paths_or_alias, str) else list(paths_or_alias)
        policy = config.defaults if config is not None else MultipathPolicy()
        name = urls[0] if urls else "multipath"
    if settings:
        policy = policy.updated(**settings)
    transports = [open_or_defer(u, open_transport)[0] for u in urls]
    return MultipathDevice(
        transports,
        name=name,
        device_type=device_type,
        policy=policy,
        handler=handler_name or "auto",
        monitor=monitor,
    )
