"""The protocol core stays sans-I/O: no sockets, threads, selectors or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tapepath.iscsi

CORE = ["pdu", "text", "chap", "login", "session", "events", "serial", "opcodes", "digest"]
FORBIDDEN = {"socket", "threading", "select", "selectors", "asyncio", "time", "subprocess"}


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io(module: str) -> None:
    """Each core module imports nothing that does I/O, threads or reads the clock."""
    path = Path(tapepath.iscsi.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{module} imports {imported & FORBIDDEN}"
