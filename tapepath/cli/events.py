"""Readable one-line renderings of tapepath's structlog events.

:func:`render_event` knows the events of path and recovery handling
(``path_state_changed``, ``recovery_transition``, ``command_resent``,
``path_failure_decision``, ``alua_activate``, ...) and renders any other event as its
name and key=value fields. :data:`WATCHED` lists the events ``monitor`` and the demo
show by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tapepath.multipath.redact import redact_url

__all__ = ["WATCHED", "event_json", "render_event"]

#: Events shown by ``tapepath monitor`` and ``tapepath demo``.
WATCHED = frozenset(
    {
        "path_state_changed",
        "path_added",
        "path_removed",
        "path_failure_decision",
        "recovery_transition",
        "recovery_started",
        "recovery_finished",
        "command_resent",
        "command_completed_by_recovery",
        "alua_activate",
        "no_path",
        "unit_attention",
        "tape_located_after_reset",
        "sim_control_path_failed",
        "sim_control_path_activated",
        "sim_link_changed",
    }
)

_SKIP = {"event", "level", "ts", "timestamp", "logger"}


def _short(url: object) -> str:
    text = redact_url(str(url))
    return text.removeprefix("sim://")


def _rest(ev: Mapping[str, Any], used: set[str]) -> str:
    parts = [f"{k}={_short(v)}" for k, v in sorted(ev.items()) if k not in used | _SKIP]
    return (" " + " ".join(parts)) if parts else ""


def render_event(ev: Mapping[str, Any]) -> str:
    """One readable line for an event dict (secrets removed)."""
    name = str(ev.get("event", "?"))
    if name == "path_state_changed":
        return (
            f"path {_short(ev.get('path'))}: {ev.get('old')} -> {ev.get('new')}"
            f" ({_short(ev.get('reason', ''))})"
        )
    if name == "recovery_transition":
        text = (
            f"recovery of {_short(ev.get('device', ''))}: {ev.get('old', ev.get('from', '?'))}"
            f" -> {ev.get('new', ev.get('to', '?'))}"
        )
        extra = [f"on {ev.get('trigger')}"] if ev.get("trigger") else []
        if ev.get("new_path"):
            extra.append(f"new path {_short(ev['new_path'])}")
        if ev.get("unit_attentions"):
            extra.append(f"unit attentions {ev['unit_attentions']}")
        if ev.get("commands"):
            extra.append(f"commands {ev['commands']}")
        return text + (f" ({', '.join(extra)})" if extra else "")
    if name == "command_resent":
        return f"command resent on {_short(ev.get('path', ev.get('device', '')))}" + _rest(
            ev, {"path", "device"}
        )
    if name == "path_failure_decision":
        return (
            f"command {ev.get('opcode')}h met a path failure on {_short(ev.get('path'))}:"
            f" {ev.get('decision')}"
        )
    if name == "alua_activate":
        ok = "activated" if ev.get("ok") else "activation refused"
        return f"path {_short(ev.get('path'))}: port group {ev.get('port_group')} {ok}"
    if name == "unit_attention":
        return f"unit attention {ev.get('kind')} before {ev.get('command')}"
    if name == "sim_control_path_failed":
        return f"FAULT: control path {ev.get('port')} of library {ev.get('library')} failed"
    if name == "sim_link_changed":
        state = "up" if ev.get("up") else "DOWN"
        return f"FAULT: link of {ev.get('device')} port {ev.get('port')} is {state}"
    return name.replace("_", " ") + _rest(ev, set())


def event_json(ev: Mapping[str, Any]) -> dict[str, Any]:
    """An event dict made JSON-safe: string values redacted, other values as text."""
    out: dict[str, Any] = {}
    for k, v in ev.items():
        if isinstance(v, (bool, int, float)) or v is None:
            out[k] = v
        else:
            out[k] = redact_url(str(v))
    return out
