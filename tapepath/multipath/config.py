"""The TOML configuration: device aliases with their path lists, and policies.

Example (see docs/configuration.md for every key)::

    [defaults]
    selector = "failover"
    failback = "immediate"
    no_path = 30
    polling_interval = 5

    [defaults.priorities]
    "iscsi://10.0.0.9" = 5

    [devices.robot]
    paths = ["iscsi://10.0.0.5/iqn.2026-11.example:vtl/0",
             "iscsi://10.0.0.6/iqn.2026-11.example:vtl/0"]
    handler = "alua"

``[defaults]`` holds the policy settings every device starts from (the same names as
:meth:`MultipathPolicy.from_settings` and the API's keyword arguments);
``[devices.ALIAS]`` names one device with its ``paths`` and may override any setting.
Errors are :class:`~tapepath.errors.ConfigError` naming the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from attrs import field, frozen

from tapepath.errors import ConfigError
from tapepath.multipath.policy import MultipathPolicy
from tapepath.multipath.redact import redact_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "CONFIG_ENV",
    "Config",
    "DeviceConfig",
    "default_config_path",
    "load_config",
    "parse_config",
]

CONFIG_ENV = "TAPEPATH_CONFIG"
"""The environment variable naming the configuration file."""

_DEVICE_KEYS = frozenset({"paths", "handler", "device_type"})
_DEVICE_TYPES = {"tape": 1, "changer": 8, "disk": 0}


def _redacted_urls(paths: tuple[str, ...]) -> str:
    return repr(tuple(redact_url(p) for p in paths))


@frozen
class DeviceConfig:
    """One ``[devices.ALIAS]`` table.

    Attributes:
        alias: the alias.
        paths: the path URLs, in order of preference (shown without secrets in repr).
        policy: the defaults with this device's settings applied.
        handler: the activation handler name, or None to choose by INQUIRY.
        device_type: the peripheral device type, when given.
    """

    alias: str
    paths: tuple[str, ...] = field(repr=_redacted_urls)
    policy: MultipathPolicy
    handler: str | None = None
    device_type: int | None = None


@frozen
class Config:
    """A parsed configuration.

    Attributes:
        defaults: the policy every device starts from.
        devices: the devices by alias.
        source: where it was read from.
    """

    defaults: MultipathPolicy = field(factory=MultipathPolicy)
    devices: Mapping[str, DeviceConfig] = field(factory=dict)
    source: str = "<defaults>"

    def device(self, alias: str) -> DeviceConfig:
        """The device called ``alias``.

        Raises:
            ConfigError: no such alias.
        """
        try:
            return self.devices[alias]
        except KeyError:
            known = ", ".join(sorted(self.devices)) or "none"
            raise ConfigError(
                f"{self.source}: no device alias {alias!r} (known: {known})"
            ) from None


def _key_lines(text: str) -> dict[str, int]:
    """Map dotted key paths to the line that sets them (tables and simple keys)."""
    lines: dict[str, int] = {}
    table = ""
    head = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    assign = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\-]+)\s*=""")
    for n, line in enumerate(text.splitlines(), 1):
        m = head.match(line)
        if m:
            table = ".".join(_unquote(p) for p in _split_dotted(m.group(1)))
            lines.setdefault(table, n)
            continue
        m = assign.match(line)
        if m:
            key = ".".join(_unquote(p) for p in _split_dotted(m.group(1)))
            lines.setdefault(f"{table}.{key}" if table else key, n)
    return lines


def _split_dotted(s: str) -> list[str]:
    return [p.strip() for p in re.findall(r""""[^"]*"|'[^']*'|[^.]+""", s)]


def _unquote(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" else s


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse configuration text.

    Raises:
        ConfigError: bad TOML, an unknown key or a bad value (file, line and key named).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    lines = _key_lines(text)

    def err(key: str, msg: str) -> ConfigError:
        line = lines.get(key)
        where = f"{source}:{line}" if line else source
        return ConfigError(f"{where}: {key}: {msg}")

    unknown = sorted(set(data) - {"defaults", "devices"})
    if unknown:
        raise err(unknown[0], "unknown table or key (expected [defaults] and [devices.ALIAS])")
    defaults = _policy(data.get("defaults", {}), "defaults", MultipathPolicy(), err)
    devices_raw = data.get("devices", {})
    if not isinstance(devices_raw, dict):
        raise err("devices", "must be a table of [devices.ALIAS] tables")
    devices: dict[str, DeviceConfig] = {}
    for alias, raw in devices_raw.items():
        where = f"devices.{alias}"
        if not isinstance(raw, dict):
            raise err(where, "must be a table")
        paths = raw.get("paths")
        if paths is None:
            raise err(where, "needs 'paths', a list of path URLs")
        if (
            not isinstance(paths, list)
            or not paths
            or not all(isinstance(p, str) and "://" in p for p in paths)
        ):
            raise err(f"{where}.paths", "must be a non-empty list of URLs (scheme://...)")
        if len(set(paths)) != len(paths):
            raise err(f"{where}.paths", "lists the same URL twice")
        handler = raw.get("handler")
        if handler is not None and not isinstance(handler, str):
            raise err(f"{where}.handler", f"must be a handler name, got {handler!r}")
        dtype = raw.get("device_type")
        if dtype is not None:
            if isinstance(dtype, str) and dtype in _DEVICE_TYPES:
                dtype = _DEVICE_TYPES[dtype]
            elif not (isinstance(dtype, int) and not isinstance(dtype, bool) and 0 <= dtype < 32):
                raise err(f"{where}.device_type", "must be 'tape', 'changer', 'disk' or 0..31")
        settings = {k: v for k, v in raw.items() if k not in _DEVICE_KEYS}
        policy = _policy(settings, where, defaults, err)
        devices[alias] = DeviceConfig(alias, tuple(paths), policy, handler, dtype)
    return Config(defaults, devices, source)


def _policy(raw: object, where: str, base: MultipathPolicy, err: Any) -> MultipathPolicy:
    if not isinstance(raw, dict):
        raise err(where, "must be a table")
    policy = base
    for key, value in raw.items():
        try:
            policy = policy.updated(**{key: value})
        except ConfigError as exc:
            raise err(f"{where}.{key}", _strip_key(str(exc), key)) from None
    return policy


def _strip_key(msg: str, key: str) -> str:
    return msg[len(key) + 2 :] if msg.startswith(f"{key}: ") else msg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration file.

    Args:
        path: the file; None for :func:`default_config_path` (an empty configuration
            when there is none).

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    if path is None:
        found = default_config_path()
        if found is None:
            return Config()
        path = found
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: the configuration is not UTF-8 text") from None
    return parse_config(text, str(p))


def default_config_path() -> FsPath | None:
    """``$TAPEPATH_CONFIG``, else ``~/.config/tapepath/tapepath.toml``, else
    ``/etc/tapepath/tapepath.toml``, whichever exists first (None if none)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return FsPath(env)
    for candidate in (
        FsPath.home() / ".config" / "tapepath" / "tapepath.toml",
        FsPath("/etc/tapepath/tapepath.toml"),
    ):
        if candidate.is_file():
            return candidate
    return None
