"""Choose a transport by URL scheme.

Built-in schemes are listed here and imported lazily, so a transport whose dependency
is missing costs nothing until it is used and then fails with a clear error. Third
parties add schemes through the entry-point group ``tapepath.transports``; each entry
point names a :class:`~tapepath.transport.base.Transport` subclass::

    [project.entry-points."tapepath.transports"]
    fc = "mypkg.fc:FcTransport"

Programs can also call :func:`register_scheme` at run time.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points

from tapepath.errors import TransportUnavailableError, UnknownSchemeError
from tapepath.transport.base import Transport

__all__ = ["open_transport", "register_scheme", "registered_schemes"]

ENTRY_POINT_GROUP = "tapepath.transports"

_BUILTIN: dict[str, str] = {
    "sg": "tapepath.transport.sg:SgTransport",
    "spti": "tapepath.transport.spti:SptiTransport",
    "iscsi": "tapepath.transport.iscsi:IscsiTransport",
    "sim": "tapepath.testing.sim:SimTransport",
}

_lock = threading.Lock()
_runtime: dict[str, type[Transport] | str] = {}
_entry_points_loaded = False
_from_entry_points: dict[str, str] = {}


def register_scheme(scheme: str, target: type[Transport] | str) -> None:
    """Register a transport class (or ``"module:Class"``) for a URL scheme.

    A later registration of the same scheme replaces the earlier one.

    Args:
        scheme: the scheme, lowercase, without ``://``.
        target: the class, or its import path as ``"package.module:Class"``.
    """
    if not scheme or not scheme.isascii() or not scheme.replace("+", "").replace("-", "").isalnum():
        raise ValueError(f"invalid URL scheme {scheme!r}")
    with _lock:
        _runtime[scheme.lower()] = target


def _load_entry_points() -> None:
    global _entry_points_loaded  # noqa: PLW0603  (a one-time cache)
    with _lock:
        if _entry_points_loaded:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _from_entry_points[ep.name.lower()] = ep.value
        _entry_points_loaded = True


def registered_schemes() -> list[str]:
    """All schemes known now: built-in, from entry points and registered at run time."""
    _load_entry_points()
    return sorted({*_BUILTIN, *_from_entry_points, *_runtime})


def _resolve(scheme: str) -> type[Transport]:
    _load_entry_points()
    target: type[Transport] | str | None = (
        _runtime.get(scheme) or _from_entry_points.get(scheme) or _BUILTIN.get(scheme)
    )
    if target is None:
        known = ", ".join(registered_schemes())
        raise UnknownSchemeError(f"no transport for scheme {scheme!r} (known: {known})")
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TransportUnavailableError(
            f"the {scheme!r} transport ({target}) cannot be imported: {exc}"
        ) from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Transport)):
        raise TransportUnavailableError(f"{target} is not a tapepath Transport class")
    return cls


def open_transport(url: str) -> Transport:
    """Open one path from its URL.

    Args:
        url: for example ``sg:///dev/sg3``, ``spti://./Tape0``,
            ``iscsi://127.0.0.1:3260/iqn.2026-11.example:vtl/3`` or ``sim://vtl/changer?port=0``.

    Returns:
        An open transport.

    Raises:
        UnknownSchemeError: no transport is registered for the scheme.
        TransportUnavailableError: the transport cannot be imported or used here.
        ValueError: the URL is malformed.
    """
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not a transport URL (scheme://...): {url!r}")
    return _resolve(scheme.lower()).from_url(url)
