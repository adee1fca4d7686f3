"""The ``tapepath`` command group: common options, device opening, error handling.

Options common to every command (``-d/--device``, ``--config``, ``--json``, ``-v``,
``-q``, ``--log-format``) are accepted before the command name and after it. Each
command runs inside :func:`run_command`, which configures logging once, turns every
exception into one line on stderr and the family's exit code (see
:mod:`tapepath.cli.errors`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from attrs import define

from tapepath.cli.errors import CliFailure, ExitCode, classify
from tapepath.cli.logsetup import EventSink, configure_logging, level_for
from tapepath.cli.output import emit_json
from tapepath.multipath.config import Config, load_config

__all__ = ["State", "common_options", "run_command", "state"]

F = TypeVar("F", bound=Callable[..., Any])


@define
class State:
    """What the common options set, shared by the group and the command."""

    device: str | None = None
    config_file: str | None = None
    json: bool = False
    verbose: int = 0
    quiet: int = 0
    log_format: str = "console"
    sink: EventSink | None = None
    _config: Config | None = None

    def config(self) -> Config:
        """The configuration: ``--config FILE``, else the default locations."""
        if self._config is None:
            self._config = load_config(self.config_file)
        return self._config

    def device_spec(self, required: bool = True) -> str | list[str] | None:
        """The ``-d`` text: a list of URLs (comma-separated) or an alias.

        Raises:
            CliFailure: no ``-d`` was given and ``required``.
        """
        if not self.device:
            if required:
                raise CliFailure(
                    "usage",
                    "no device: give -d URL[,URL...] or -d ALIAS (see --config)",
                    ExitCode.USAGE,
                )
            return None
        text = self.device.strip()
        if "://" in text:
            return [u.strip() for u in text.split(",") if u.strip()]
        return text

    def configure(self) -> None:
        """Configure structlog from the options (the CLI is the only place that does)."""
        configure_logging(
            level=level_for(self.verbose, self.quiet), fmt=self.log_format, sink=self.sink
        )


def state() -> State:
    """The current invocation's :class:`State`."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        root = ctx.find_root()
        if not isinstance(root.obj, State):
            root.obj = State()
        st = root.obj
        if name in ("verbose", "quiet"):
            setattr(st, name, getattr(st, name) + int(value or 0))
        elif name == "json":
            st.json = st.json or bool(value)
        elif value is not None:
            setattr(st, name, value)

    return callback


def common_options(f: F) -> F:
    """Add the common options to a command (or the group)."""
    options = [
        click.option(
            "-d",
            "--device",
            metavar="URLS|ALIAS",
            help="The device: path URLs separated by commas, or a configuration alias.",
            callback=_set("device"),
            expose_value=False,
        ),
        click.option(
            "--config",
            "config_file",
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="The configuration file (default: $TAPEPATH_CONFIG, "
            "~/.config/tapepath/tapepath.toml, /etc/tapepath/tapepath.toml).",
            callback=_set("config_file"),
            expose_value=False,
        ),
        click.option(
            "--json",
            "json_",
            is_flag=True,
            default=False,
            help="Machine-readable JSON output.",
            callback=_set("json"),
            expose_value=False,
        ),
        click.option(
            "-v",
            "--verbose",
            count=True,
            help="More log output on stderr (-vv for debug).",
            callback=_set("verbose"),
            expose_value=False,
        ),
        click.option(
            "-q",
            "--quiet",
            count=True,
            help="Less log output (-qq for none).",
            callback=_set("quiet"),
            expose_value=False,
        ),
        click.option(
            "--log-format",
            type=click.Choice(["console", "json"]),
            default=None,
            help="Log lines as console text or JSON (stderr).",
            callback=_set("log_format"),
            expose_value=False,
        ),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def run_command(f: F) -> F:
    """Wrap a command: configure logging, report any error as one line and exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        st = state()
        try:
            st.configure()
            return f(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            sys.stderr.write("tapepath: interrupted\n")
            sys.exit(int(ExitCode.INTERRUPTED))
        except Exception as exc:  # every failure becomes one line and an exit code
            failure = classify(exc)
            if failure.code is ExitCode.USAGE and not isinstance(exc, CliFailure):
                failure = CliFailure("usage", failure.message, ExitCode.USAGE)
            if st.json:
                emit_json(
                    {
                        "error": {
                            "family": failure.family,
                            "message": failure.message,
                            "exit_code": int(failure.code),
                        }
                    }
                )
            sys.stderr.write(f"tapepath: {failure.family}: {failure.message}\n")
            sys.stderr.flush()
            sys.exit(int(failure.code))

    return wrapper  # type: ignore[return-value]
