"""``tapepath monitor``: path and recovery events of a device, live."""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.events import WATCHED, event_json, render_event
from tapepath.cli.output import emit_json
from tapepath.multipath.discovery import open_device

__all__ = ["monitor_cmd"]


@click.command("monitor")
@click.option(
    "--duration",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds (default: until Ctrl-C).",
)
@click.option("--all-events", is_flag=True, help="Show every event, not only path and recovery.")
@common_options
@run_command
def monitor_cmd(duration: float | None, all_events: bool) -> None:
    """Watch the -d device's paths: state changes, failures, recoveries, as they come.

    The path checker probes every path in the background; each event is printed as
    one line (or one JSON object per line with --json).
    """
    st = state()
    lock = threading.Lock()
    t0 = time.monotonic()

    def live(ev: dict[str, Any]) -> None:
        if not all_events and ev.get("event") not in WATCHED:
            return
        with lock:
            if st.json:
                emit_json(event_json(ev))
            else:
                stamp = time.strftime("%H:%M:%S")
                click.echo(f"{stamp} +{ev.get('ts', t0) - t0:.3f}s {render_event(ev)}")

    st.sink = live
    st.configure()
    spec = st.device_spec()
    assert spec is not None
    dev = open_device(spec, config=st.config(), monitor=True)
    try:
        if not st.json:
            click.echo(f"watching {len(dev.paths)} path(s); Ctrl-C to stop")
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            left = 0.2 if end is None else max(0.0, min(0.2, end - time.monotonic()))
            time.sleep(left)
    except KeyboardInterrupt:
        pass
    finally:
        dev.close()
