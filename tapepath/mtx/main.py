"""``tapepath-mtx``: the entry point of the mtx 1.3.12 drop-in.

Standard output carries exactly what mtx prints; errors go to stderr as mtx writes them
and the exit status is mtx's (0 on success, 1 on any fatal error or usage error).
tapepath's own log events stay off unless ``TAPEPATH_LOG`` names a level
(``debug``/``info``/``warning``/``error``); they then go to stderr, as console lines or
JSON (``TAPEPATH_LOG_FORMAT=json``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO

from tapepath.mtx.args import USAGE, Command, SetDevice, UsageError, parse
from tapepath.mtx.commands import MtxFatal, MtxSession, Opener

__all__ = ["main", "run"]


def run(
    argv: Sequence[str],
    *,
    out: IO[str],
    err: IO[str],
    opener: Opener | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """Run an mtx command line (without the program name) and return the exit status.

    Args:
        argv: the arguments.
        out: mtx's standard output.
        err: mtx's standard error.
        opener: opens the changer from its paths (default: :func:`tapepath.open_library`
            without a background monitor).
        environ: the environment ($CHANGER, $TAPE); default: the process's.
    """
    session = MtxSession(out=out, err=err, environ=dict(os.environ if environ is None else environ))
    if opener is not None:
        session.opener = opener
    try:
        for step in parse(argv):
            if isinstance(step, SetDevice):
                session.set_device(step.device)
            else:
                assert isinstance(step, Command)
                session.run(step)
    except UsageError:
        out.flush()
        err.write(USAGE)
        err.flush()
        return 1
    except MtxFatal as exc:
        out.flush()
        if exc.detail:
            err.write(exc.detail)
        if exc.message:
            err.write(exc.message + "\n")
        err.flush()
        return exc.status
    except KeyboardInterrupt:
        return 130
    finally:
        session.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tapepath-mtx`` console script."""
    from tapepath.cli.logsetup import configure_logging  # noqa: PLC0415

    level = os.environ.get("TAPEPATH_LOG", "silent") or "silent"
    fmt = os.environ.get("TAPEPATH_LOG_FORMAT", "console")
    try:
        configure_logging(level=level, fmt=fmt if fmt in ("console", "json") else "console")
    except ValueError:
        configure_logging(level="silent")
    args = list(sys.argv[1:] if argv is None else argv)
    return run(args, out=sys.stdout, err=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
