"""Unit tests of the VM harness pieces that need no VM: module order, agent protocol."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vm import guest_agent, harness
from tests.vm.harness import AgentConnection, GuestError, HarnessUnavailable, Kernel


def _kernel(tmp_path: Path, dep_lines: list[str]) -> Kernel:
    moddir = tmp_path / "lib" / "modules" / "9.9.9-test"
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text("\n".join(dep_lines) + "\n")
    return Kernel(version="9.9.9-test", root=tmp_path, vmlinuz=tmp_path / "vmlinuz")


class TestModuleOrder:
    """Resolving insmod order from modules.dep."""

    DEPS = [
        "kernel/a/scsi_common.ko:",
        "kernel/a/scsi_mod.ko: kernel/a/scsi_common.ko",
        "kernel/a/sg.ko: kernel/a/scsi_mod.ko kernel/a/scsi_common.ko",
        "kernel/b/libiscsi.ko: kernel/b/scsi_transport_iscsi.ko kernel/a/scsi_mod.ko "
        "kernel/a/scsi_common.ko",
        "kernel/b/scsi_transport_iscsi.ko: kernel/a/scsi_mod.ko kernel/a/scsi_common.ko",
        "kernel/c/crc32c-generic.ko:",
    ]

    def test_dependencies_come_first(self, tmp_path: Path) -> None:
        """Every module follows all of its dependencies, and appears once."""
        k = _kernel(tmp_path, self.DEPS)
        order = harness.module_order(k, ["sg", "libiscsi", "scsi_mod"])
        assert len(order) == len(set(order))
        deps = {line.split(":")[0]: line.split(":")[1].split() for line in self.DEPS}
        for i, mod in enumerate(order):
            assert set(deps[mod]) <= set(order[:i]), (mod, order)
        assert set(order) == {
            "kernel/a/scsi_common.ko",
            "kernel/a/scsi_mod.ko",
            "kernel/a/sg.ko",
            "kernel/b/scsi_transport_iscsi.ko",
            "kernel/b/libiscsi.ko",
        }

    def test_dash_and_underscore_are_one_name(self, tmp_path: Path) -> None:
        """crc32c_generic finds crc32c-generic.ko, as modprobe would."""
        k = _kernel(tmp_path, self.DEPS)
        assert harness.module_order(k, ["crc32c_generic"]) == ["kernel/c/crc32c-generic.ko"]

    def test_unknown_module(self, tmp_path: Path) -> None:
        """A module the kernel lacks makes the harness unavailable, naming it."""
        k = _kernel(tmp_path, self.DEPS)
        with pytest.raises(HarnessUnavailable, match="nosuch"):
            harness.module_order(k, ["nosuch"])


class TestKernelPackage:
    """Finding the current kernel package from apt-cache's answer."""

    def test_picks_the_image_dependency(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The linux-image-*-amd64 dependency is the package."""
        out = "linux-image-amd64\n  Depends: linux-image-6.1.0-99-amd64\n"
        monkeypatch.setattr(harness, "_run", lambda *a, **k: out)
        assert harness.current_kernel_package() == "linux-image-6.1.0-99-amd64"

    def test_none_found(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No such dependency: the harness is unavailable."""
        monkeypatch.setattr(harness, "_run", lambda *a, **k: "linux-image-amd64\n")
        with pytest.raises(HarnessUnavailable, match="apt-get update"):
            harness.current_kernel_package()

    def test_missing_tool(self) -> None:
        """A tool that is not installed is HarnessUnavailable, not FileNotFoundError."""
        with pytest.raises(HarnessUnavailable, match="not installed"):
            harness._run(["/nonexistent/tool-for-tapepath"])


def _fake_guest(server: socket.socket, answers: list[bytes], hold: float = 0.0) -> threading.Thread:
    """Accept, read one request, send ``answers`` in pieces, stay open ``hold`` seconds."""

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for a in answers:
                time.sleep(0.02)
                conn.sendall(a)
            time.sleep(hold)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


@pytest.fixture
def unix_server(tmp_path: Path) -> tuple[socket.socket, Path]:
    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    return server, path


class TestAgentConnection:
    """The host side of the JSON line protocol."""

    def test_request_answer(self, unix_server: tuple[socket.socket, Path]) -> None:
        """Answers to other ids are skipped; the matching result is returned."""
        server, path = unix_server
        stale = json.dumps({"id": 99, "ok": True, "result": "old"}).encode() + b"\n"
        mine = json.dumps({"id": 1, "ok": True, "result": {"x": [1, 2]}}).encode() + b"\n"
        _fake_guest(server, [stale + mine[:5], mine[5:]])
        conn = AgentConnection(path, timeout=2)
        try:
            assert conn.request("call", timeout=5, function="f") == {"x": [1, 2]}
        finally:
            conn.close()
            server.close()

    def test_guest_exception(self, unix_server: tuple[socket.socket, Path]) -> None:
        """A guest traceback becomes GuestError carrying it."""
        server, path = unix_server
        err = json.dumps({"id": 1, "ok": False, "error": "Traceback: boom"}).encode() + b"\n"
        _fake_guest(server, [err])
        conn = AgentConnection(path, timeout=2)
        try:
            with pytest.raises(GuestError, match="boom"):
                conn.request("call", timeout=5)
        finally:
            conn.close()
            server.close()

    def test_silence_times_out(self, unix_server: tuple[socket.socket, Path]) -> None:
        """No answer within the timeout is TimeoutError."""
        server, path = unix_server
        _fake_guest(server, [], hold=1.0)
        conn = AgentConnection(path, timeout=2)
        try:
            with pytest.raises(TimeoutError):
                conn.request("ping", timeout=0.3)
        finally:
            conn.close()
            server.close()

    def test_missing_socket(self, tmp_path: Path) -> None:
        """A socket QEMU never created makes the harness unavailable."""
        with pytest.raises(HarnessUnavailable, match="did not create"):
            AgentConnection(tmp_path / "none.sock", timeout=0.2)


class TestGuestAgent:
    """The guest side's dispatch, run here."""

    def test_ping_and_sh(self) -> None:
        """ping answers pong; sh returns the command's code and output."""
        assert guest_agent._handle("ping", {}) == "pong"
        res = guest_agent._handle("sh", {"argv": ["sh", "-c", "echo hi; exit 3"]})
        assert res == {"rc": 3, "stdout": "hi\n", "stderr": ""}

    @given(st.text(min_size=1).filter(lambda s: s not in ("ping", "sh", "call")))
    def test_unknown_op(self, op: str) -> None:
        """Any other op is a ValueError naming it."""
        with pytest.raises(ValueError, match="unknown op"):
            guest_agent._handle(op, {})
