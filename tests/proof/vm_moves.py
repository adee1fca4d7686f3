"""A robot-move sequence through ``tapepath.open_library``, run inside the VM guest.

``python tests/proof/vm_moves.py --urls sg:///dev/sgA,sg:///dev/sgB --out FILE`` opens
the changer over its two sg nodes, empties drive 0 if needed, then loads the first full
slot into drive 0 and unloads it back, ``--moves`` times in all, pausing ``--pause``
seconds after each move; after ``--wait-after`` moves it waits until ``--wait-file``
exists (the host cuts a path, then creates it); with ``--final-file`` it reads the
inventory once more, a second after that file appears (the host brings the path back,
then creates it). After every move it appends
the move's index to ``--progress`` and, at the end, writes one JSON document to
``--out``: the moves (error, seconds, commands sent per path, the inventory seen after
it) and the final path states. It imports only tapepath, so it runs wherever tapepath
is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import tapepath
from tapepath.errors import TapepathError


def _sent(lib: tapepath.Library) -> dict[str, int]:
    return {p.url: p.stats.commands for p in lib.paths}


def _wait_for_file(path: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


def run(
    urls: list[str],
    moves: int,
    pause: float,
    progress: str,
    wait_after: int = 0,
    wait_file: str = "",
    final_file: str = "",
) -> dict[str, Any]:
    """The sequence; returns what :func:`main` writes out."""
    done: list[dict[str, Any]] = []
    with tapepath.open_library(urls, monitor=False, move_timeout=60.0, timeout=60.0) as lib:
        inv = lib.inventory()
        if inv.drive(0).full:
            lib.unload(0)
            inv = lib.inventory()
        slot = next(e for e in inv.slots if e.full)
        barcode = slot.barcode
        for i in range(moves):
            op = "load" if i % 2 == 0 else "unload"
            before = _sent(lib)
            started = time.monotonic()
            error = None
            try:
                if op == "load":
                    lib.load(slot.ordinal, 0)
                else:
                    lib.unload(0, slot.ordinal)
            except TapepathError as exc:
                error = f"{type(exc).__name__}: {exc}"
            seconds = time.monotonic() - started
            after = _sent(lib)
            seen = lib.inventory()
            done.append(
                {
                    "index": i,
                    "op": op,
                    "error": error,
                    "seconds": round(seconds, 4),
                    "sent": {u: after[u] - before.get(u, 0) for u in after},
                    "drive_barcode": seen.drive(0).barcode,
                    "drive_source": seen.drive(0).source,
                    "slot_barcode": seen.slot(slot.ordinal).barcode,
                    "states": {p.url: p.state.value for p in lib.paths},
                    "last_errors": {p.url: p.stats.last_error for p in lib.paths},
                }
            )
            with open(progress, "a", encoding="ascii") as f:
                f.write(f"{i}\n")
            if wait_file and i + 1 == wait_after:
                _wait_for_file(wait_file)  # the host cuts a path meanwhile
            time.sleep(pause)
        final: dict[str, Any] = {}
        if final_file:  # a command held on the cut path could run when it comes back
            _wait_for_file(final_file)
            time.sleep(1.0)
            seen = lib.inventory()
            final = {
                "drive_barcode": seen.drive(0).barcode,
                "slot_barcode": seen.slot(slot.ordinal).barcode,
            }
        return {
            "final": final,
            "barcode": barcode,
            "slot_address": slot.address,
            "moves": done,
            "states": {p.url: p.state.value for p in lib.paths},
        }


def main(argv: list[str]) -> int:
    """Parse the arguments, run the sequence, write the result (atomically)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--urls", required=True)
    ap.add_argument("--moves", type=int, default=8)
    ap.add_argument("--pause", type=float, default=1.0)
    ap.add_argument("--progress", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wait-after", type=int, default=0, help="moves before the pause")
    ap.add_argument("--wait-file", default="", help="go on once this file exists")
    ap.add_argument("--final-file", default="", help="once it exists, read the inventory")
    args = ap.parse_args(argv)
    try:
        result = run(
            args.urls.split(","),
            args.moves,
            args.pause,
            args.progress,
            args.wait_after,
            args.wait_file,
            args.final_file,
        )
    except Exception as exc:
        result = {"failed": f"{type(exc).__name__}: {exc}"}
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
