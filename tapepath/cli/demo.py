"""``tapepath demo``: the README's first command (see :mod:`tapepath.cli.demo_run`)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import click

from tapepath.cli.app import common_options, run_command, state
from tapepath.cli.demo_run import DemoReport, EventCollector, run_demo
from tapepath.cli.errors import CliFailure, ExitCode
from tapepath.cli.events import WATCHED, event_json, render_event
from tapepath.cli.output import emit_json

__all__ = ["demo_cmd"]

_SHOWN = WATCHED - {"path_added"}


def _summary(r: DemoReport) -> str:
    lines = [
        "",
        "summary",
        f"  path failures          {r.path_failures}",
        f"  commands recovered     {r.commands_recovered}",
        f"  records written/read   {r.records_written}/{r.records_read}"
        f" (+{r.filemarks_written} filemarks)",
        f"  duplicates on tape     {r.duplicates}",
        f"  missing on tape        {r.missing}",
        f"  corrupt records        {r.corrupt}",
        f"  order as written       {'yes' if not r.out_of_order else 'NO'}",
        f"  cartridge locations    {'as expected' if r.locations_ok else 'WRONG'}"
        f" ({len(r.locations_expected)} cartridges checked)",
        f"  time to recover        {r.recovery_seconds * 1000:.1f} ms (longest)",
        f"  elapsed                {r.elapsed:.2f} s",
        "",
        "verified: no command lost or sent twice" if r.ok else "VERIFICATION FAILED",
    ]
    return "\n".join(lines)


@click.command("demo")
@click.option("--records", type=click.IntRange(1, 100000), default=60, show_default=True)
@common_options
@run_command
def demo_cmd(records: int) -> None:
    """Run a backup on a virtual library while its paths die, and prove nothing was lost.

    Starts a virtual library with two control paths and dual-ported drives, inventories
    it, loads a cartridge and writes records and filemarks; the active control path and
    drive 0's active port are cut in the middle. The path and recovery events are shown
    as they come, then a summary verified by reading the tape back and checking every
    cartridge's location. Exit 0 when everything verified, 8 when not.
    """
    st = state()
    lock = threading.Lock()
    t0 = time.monotonic()

    def live(ev: dict[str, Any]) -> None:
        if ev.get("event") not in _SHOWN:
            return
        with lock:
            if st.json:
                emit_json({"type": "event", **event_json(ev)})
            else:
                click.echo(f"  {ev['ts'] - t0:7.3f}s  {render_event(ev)}")

    def say(text: str) -> None:
        with lock:
            if st.json:
                emit_json({"type": "step", "text": text})
            else:
                click.echo(text if text.startswith(" ") else f"- {text}")

    collector = EventCollector(live=live)
    st.sink = collector
    st.configure()
    report = run_demo(collector, say=say, records=records)
    if st.json:
        emit_json({"type": "summary", **report.as_dict()})
    else:
        click.echo(_summary(report))
    sys.stdout.flush()
    if not report.ok:
        raise CliFailure("verification", "the demo's verification failed", ExitCode.VERIFY)
