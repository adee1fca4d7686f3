"""The tapepath CLI against a VirtualLibrary: output, JSON schema, exit codes, secrets."""

from __future__ import annotations

import json

import pytest

from tapepath.cli.errors import ExitCode
from tapepath.testing import VirtualLibrary
from tapepath.testing.faults import ControlPathFailure, FaultPlan, When
from tests.cli.conftest import Run

ELEMENT_KEYS = {
    "kind",
    "number",
    "address",
    "full",
    "barcode",
    "source",
    "serial",
    "accessible",
    "exception",
}
PATH_KEYS = {
    "url",
    "state",
    "role",
    "priority",
    "port_group",
    "relative_port",
    "commands",
    "errors",
    "last_error",
}


def changer(vl: VirtualLibrary) -> str:
    """The -d text for the library's changer: both control paths."""
    return ",".join(vl.changer_urls())


class TestInventory:
    """inventory: table and JSON match the library's state."""

    def test_json_schema_and_content(self, run: Run, vl: VirtualLibrary) -> None:
        """Every element has the stable keys; barcodes and numbers match the library."""
        doc = run.json("inventory", "-d", changer(vl))
        inv = doc["inventory"]
        assert set(inv) == {"transports", "drives", "slots", "import_export"}
        for kind in inv.values():
            for e in kind:
                assert set(e) == ELEMENT_KEYS
        state = vl.inventory()
        assert [s["number"] for s in inv["slots"]] == list(range(1, 9))
        assert inv["import_export"][0]["number"] == 9
        for s in inv["slots"]:
            assert s["barcode"] == state.get(s["address"])
            assert s["full"] == (s["address"] in state)
        assert [d["number"] for d in inv["drives"]] == [0, 1]
        assert doc["initialize_seconds"] is None

    def test_table(self, run: Run, vl: VirtualLibrary) -> None:
        """The human form lists the barcodes."""
        r = run("-d", changer(vl), "inventory", "--initialize")
        assert r.exit_code == 0, r.stderr
        for code in vl.inventory().values():
            assert code in r.stdout
        assert "initialized in" in r.stdout


class TestMoves:
    """load, unload, transfer and move change the library."""

    def test_load_unload(self, run: Run, vl: VirtualLibrary) -> None:
        """load puts slot 2's cartridge in drive 1; unload puts it back."""
        doc = run.json("load", "2", "1", "-d", changer(vl))
        assert doc == {
            "ok": True,
            "operation": "load",
            "slot": 2,
            "drive": 1,
            "barcode": "TP0002L8",
        }
        assert vl.where("TP0002L8") == vl.drive_address(1)
        doc = run.json("unload", "1", "-d", changer(vl))
        assert doc["slot"] == 2
        assert doc["element"]["barcode"] == "TP0002L8"
        assert vl.where("TP0002L8") == vl.slot_address(1)

    def test_transfer_and_move_by_barcode(self, run: Run, vl: VirtualLibrary) -> None:
        """transfer uses slot numbers; move takes a barcode and an address."""
        assert run("-d", changer(vl), "transfer", "1", "8").exit_code == 0
        assert vl.where("TP0001L8") == vl.slot_address(7)
        dst = hex(vl.slot_address(6))
        r = run("-d", changer(vl), "move", "TP0001L8", dst)
        assert r.exit_code == 0, r.stderr
        assert vl.where("TP0001L8") == vl.slot_address(6)

    def test_load_survives_a_dead_control_path(self, run: Run, vl: VirtualLibrary) -> None:
        """The active control path dies on the MOVE MEDIUM; the load still completes once."""
        vl.install(
            FaultPlan().add(
                ControlPathFailure(trigger=When(lambda i: i.opcode == 0xA5), drive_too=False)
            )
        )
        r = run("-d", changer(vl), "load", "3")
        assert r.exit_code == 0, r.stderr
        assert vl.where("TP0003L8") == vl.drive_address(0)
        assert vl.active_control_path() == 1


class TestStatus:
    """status shows the topology with roles and counters."""

    def test_json(self, run: Run, vl: VirtualLibrary) -> None:
        """One device with two paths: the active control path and the passive one."""
        doc = run.json("status", "-d", changer(vl))
        (dev,) = doc["devices"]
        assert dev["type"] == "changer"
        assert dev["vendor"]
        assert dev["product"]
        assert [set(p) for p in dev["paths"]] == [PATH_KEYS, PATH_KEYS]
        roles = {p["url"]: (p["state"], p["role"]) for p in dev["paths"]}
        urls = vl.changer_urls()
        assert roles[urls[0]][0] == "active"
        assert roles[urls[1]] == ("passive", "passive")

    def test_text(self, run: Run, vl: VirtualLibrary) -> None:
        """The text form has one line per path with state and priority."""
        r = run("status", "-d", changer(vl))
        assert r.exit_code == 0, r.stderr
        lines = r.stdout.splitlines()
        assert "type=changer paths=2" in lines
        assert sum(1 for line in lines if "prio=" in line and "errors=" in line) == 2

    def test_discover(self, run: Run, vl: VirtualLibrary) -> None:
        """discover sim://NAME finds the changer and both drives, each with its paths."""
        doc = run.json("discover", f"sim://{vl.name}")
        types = sorted(d["type"] for d in doc["devices"])
        assert types == ["changer", "tape", "tape"]
        assert all(len(d["paths"]) == 2 for d in doc["devices"])


class TestPosition:
    """position on a drive."""

    def test_position_json(self, run: Run, vl: VirtualLibrary) -> None:
        """A freshly loaded tape is at block 0."""
        vl.insert(vl.drive_address(0), "DR0001L8")
        doc = run.json("position", "--rewind", "-d", ",".join(vl.drive_urls(0)))
        assert doc["position"]["block"] == 0
        assert set(doc["position"]) == {"block", "file", "partition", "bop", "eop", "source"}


class TestErrors:
    """One line on stderr and a distinct exit code per family."""

    def test_not_found(self, run: Run, vl: VirtualLibrary) -> None:
        """A slot that does not exist is 'not found'."""
        r = run("-d", changer(vl), "load", "99")
        assert r.exit_code == ExitCode.NOT_FOUND
        assert r.stderr.startswith("tapepath: not found: ")
        assert r.stderr.count("\n") == 1

    def test_device_error(self, run: Run, vl: VirtualLibrary) -> None:
        """A move onto a full slot is refused by the changer: device error."""
        r = run("-d", changer(vl), "--json", "transfer", "1", "2")
        assert r.exit_code == ExitCode.DEVICE
        doc = json.loads(r.stdout)
        assert doc["error"]["family"] == "device error"
        assert doc["error"]["exit_code"] == ExitCode.DEVICE

    def test_no_device_is_usage(self, run: Run) -> None:
        """No -d: usage error 2."""
        r = run("inventory")
        assert r.exit_code == ExitCode.USAGE
        assert "no device" in r.stderr

    def test_unknown_alias_is_config(self, run: Run, tmp_path: pytest.TempPathFactory) -> None:
        """An alias the configuration does not have: configuration error 3."""
        cfg = tmp_path / "t.toml"  # type: ignore[operator]
        cfg.write_text('[devices.robot]\npaths = ["sim://nothing/changer?port=0"]\n')
        r = run("--config", str(cfg), "-d", "other", "inventory")
        assert r.exit_code == ExitCode.CONFIG
        assert r.stderr.startswith("tapepath: configuration: ")

    def test_no_path(self, run: Run) -> None:
        """Paths that cannot be reached: no path 4."""
        r = run("-d", "sim://no-such-library/changer?port=0", "inventory")
        assert r.exit_code == ExitCode.NO_PATH, r.stderr
        # warnings of the library may come first (stderr); the error is the last line
        assert r.stderr.splitlines()[-1].startswith("tapepath: no path: ")
        quiet = run("-q", "-d", "sim://no-such-library/changer?port=0", "inventory").stderr
        assert quiet.count("\n") == 1
        assert quiet.startswith("tapepath: no path: ")

    def test_click_usage(self, run: Run) -> None:
        """A bad option is click's usage error 2."""
        assert run("load", "--nope").exit_code == ExitCode.USAGE


class TestSecrets:
    """Passwords in URLs never reach output, logs or errors."""

    def test_password_not_shown(self, run: Run) -> None:
        """An iSCSI URL with a password: the error line and JSON hide it."""
        url = "iscsi://user%sup3rsecret@127.0.0.1:1/iqn.2026-11.x:y/1?target_password=t0psecret"
        r = run("-vv", "--json", "-d", url, "status")
        assert "sup3rsecret" not in r.stdout + r.stderr
        assert "t0psecret" not in r.stdout + r.stderr
        shown = json.loads(r.stdout)["devices"][0]["paths"][0]["url"]
        assert shown == url.replace("sup3rsecret", "***").replace("t0psecret", "***")


class TestLogging:
    """-v and --log-format: log lines on stderr, stdout untouched."""

    def test_json_log_lines(self, run: Run, vl: VirtualLibrary) -> None:
        """With -v --log-format json every stderr line is a JSON event; stdout is the JSON."""
        r = run("-v", "--log-format", "json", "--json", "-d", changer(vl), "inventory")
        assert r.exit_code == 0, r.stderr
        events = [json.loads(line) for line in r.stderr.splitlines()]
        assert events
        assert all("event" in e and "level" in e for e in events)
        assert "path_added" in {e["event"] for e in events}
        assert "inventory" in json.loads(r.stdout)

    def test_quiet_has_no_log_lines(self, run: Run, vl: VirtualLibrary) -> None:
        """-qq: nothing on stderr on success."""
        r = run("-qq", "-d", changer(vl), "inventory")
        assert r.exit_code == 0
        assert r.stderr == ""
