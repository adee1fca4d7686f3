"""The agent inside the VM: JSON requests in, JSON answers out, one at a time.

It runs with this machine's Python in a chroot of the 9p share and talks over a
virtio-serial port. Requests are lines ``{"id": N, "op": OP, "args": {...}}``:

- ``call``: run ``tests.vm.guest_ops.<function>(**kwargs)``, answer its result;
- ``sh``: run ``argv`` and answer ``{"rc", "stdout", "stderr"}``;
- ``ping``: answer ``"pong"``.

Every answer is ``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false,
"error": TRACEBACK}``. The first line the agent writes is ``{"hello": {...}}``.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from typing import Any


def _handle(op: str, args: dict[str, Any]) -> Any:
    if op == "ping":
        return "pong"
    if op == "sh":
        res = subprocess.run(
            args["argv"],
            capture_output=True,
            text=True,
            timeout=args.get("timeout", 60),
            check=False,
        )
        return {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr}
    if op == "call":
        guest_ops = importlib.import_module("tests.vm.guest_ops")  # after the hello: slow
        func = getattr(guest_ops, args["function"])
        return func(**args.get("kwargs", {}))
    raise ValueError(f"unknown op {op!r}")


def main(argv: list[str]) -> int:
    """Serve requests on the port ``argv[0]`` until it is closed for good."""
    if not argv or not argv[0]:
        print("guest_agent: no agent port", file=sys.stderr)
        return 2
    fd = os.open(argv[0], os.O_RDWR)

    def send(obj: dict[str, Any]) -> None:
        data = (json.dumps(obj) + "\n").encode()
        while data:
            n = os.write(fd, data)
            data = data[n:]

    send({"hello": {"kernel": platform.release(), "python": sys.version.split()[0]}})
    buf = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            time.sleep(0.05)  # the host is not connected right now
            continue
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                result = _handle(req["op"], req.get("args", {}))
                send({"id": req.get("id"), "ok": True, "result": result})
            except Exception:
                send({"id": req.get("id"), "ok": False, "error": traceback.format_exc()})
