"""Logging setup for the command line: the only place tapepath configures structlog.

:func:`configure_logging` routes every structlog event of the library to stderr, as
human-readable console lines or as one JSON object per line, filtered by level, with
secrets removed from every string value. A ``sink`` callable, when given, sees every
event dict first (the ``monitor`` command and the demo render events from it).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import IO, Any

import structlog

from tapepath.multipath.redact import redact_url

__all__ = ["EventSink", "configure_logging", "level_for", "redact_event"]

#: A callable that receives each event dict (after redaction), before filtering.
EventSink = Callable[[dict[str, Any]], None]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}


def level_for(verbose: int, quiet: int) -> int:
    """The level for ``-v``/``-q`` counts: warnings by default, -v info, -vv debug,
    -q errors only, -qq nothing."""
    score = verbose - quiet
    if score >= 2:
        return logging.DEBUG
    if score == 1:
        return logging.INFO
    if score == 0:
        return logging.WARNING
    if score == -1:
        return logging.ERROR
    return _LEVELS["silent"]


def redact_event(event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``event`` with every string value passed through :func:`redact_url`."""
    for key, value in list(event.items()):
        if isinstance(value, str):
            event[key] = redact_url(value)
    return event


def configure_logging(
    *,
    level: int | str = logging.WARNING,
    fmt: str = "console",
    stream: IO[str] | None = None,
    sink: EventSink | None = None,
) -> None:
    """Configure structlog for a command-line process.

    Args:
        level: the lowest level written (a :mod:`logging` level or a name such as
            ``"info"``; ``"silent"`` writes nothing).
        fmt: ``"console"`` or ``"json"``.
        stream: where lines go (default: stderr, looked up at each event so a test
            runner's replacement is honoured).
        sink: sees every event (whatever its level) before it is filtered.

    Raises:
        ValueError: an unknown format or level name.
    """
    if fmt not in ("console", "json"):
        raise ValueError(f"log format must be console or json, not {fmt!r}")
    if isinstance(level, str):
        if level.lower() not in _LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        level = _LEVELS[level.lower()]
    threshold = level

    def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
        return redact_event(event)

    def to_sink(_logger: Any, name: str, event: MutableMapping[str, Any]) -> Any:
        if sink is not None:
            record = dict(event)
            record.setdefault("level", name)
            record.setdefault("ts", time.monotonic())
            sink(record)
        if _LEVELS.get(name, logging.INFO) < threshold:
            raise structlog.DropEvent
        return event

    def render(_logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        if fmt == "json":
            event.setdefault("level", name)
            event.setdefault("timestamp", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            return json.dumps(event, default=str, sort_keys=True)
        event.pop("level", None)
        head = f"{time.strftime('%H:%M:%S')} [{name:<7}] {event.pop('event', '')}"
        rest = " ".join(f"{k}={v}" for k, v in sorted(event.items()))
        return f"{head} {rest}".rstrip()

    class _Writer:
        def msg(self, message: str) -> None:
            out = stream if stream is not None else sys.stderr
            out.write(message + "\n")
            out.flush()

        debug = info = warning = warn = error = critical = exception = msg

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            redact,
            to_sink,
            render,
        ],
        logger_factory=lambda *_a: _Writer(),
        wrapper_class=structlog.BoundLogger,
        cache_logger_on_first_use=False,
    )
