"""Fixtures of the CLI tests: a click runner, a virtual library, structlog put back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from tapepath.cli import cli
from tapepath.testing import VirtualLibrary


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """The CLI configures structlog; put the defaults back for the other tests."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def vl(request: pytest.FixtureRequest) -> Iterator[VirtualLibrary]:
    """A virtual library (8 slots, 1 import/export, 2 drives) named after the test."""
    name = "cli-" + request.node.name.replace("[", "-").replace("]", "")[:40]
    with VirtualLibrary(name, slots=8, import_export=1, drives=2) as lib:
        yield lib


class Run:
    """Invoke the tapepath CLI in-process."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run ``tapepath ARGS``; never raises (the exit code is in the result)."""
        return self.runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        """Run with --json; return the parsed stdout (exit code must be 0)."""
        r = self(*args, "--json")
        assert r.exit_code == 0, (r.stdout, r.stderr)
        return json.loads(r.stdout)


@pytest.fixture
def run() -> Run:
    """The CLI runner."""
    return Run()
