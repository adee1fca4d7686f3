"""tapepath-mtx commands against a VirtualLibrary (sim:// paths), with failover."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import tapepath
from tapepath.mtx import run
from tapepath.mtx.args import USAGE, Command, parse
from tapepath.mtx.commands import MtxSession
from tapepath.mtx.status import MtxDrive, MtxSlot, MtxStatus
from tapepath.testing import VirtualLibrary
from tapepath.testing.faults import ControlPathFailure, FaultPlan, When


def mtx(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run tapepath-mtx in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    rc = run(list(args), out=out, err=err, environ=env or {})
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def vl() -> Iterator[VirtualLibrary]:
    """A library with 6 slots (5 full), 2 import/export elements and 2 drives."""
    with VirtualLibrary("mtx-cmds", slots=6, import_export=2, drives=2) as lib:
        yield lib


def dev(vl: VirtualLibrary) -> str:
    """The -f text: both control paths, comma-separated."""
    return ",".join(vl.changer_urls())


STATUS_LINE = re.compile(
    r"^(  Storage Changer .*:\d+ Drives, \d+ Slots \( \d+ Import/Export \)"
    r"|Data Transfer Element \d+:(Empty|Full \((Storage Element \d+|Unknown Storage Element)"
    r" Loaded\)(:VolumeTag = .*)?)"
    r"|      Storage Element \d+( IMPORT/EXPORT)?:(Empty|Full )(:VolumeTag=.*)?)$"
)


class TestStatus:
    """status reads the library and prints mtx's report."""

    def test_layout(self, vl: VirtualLibrary) -> None:
        """Counts, numbering and barcodes match the library's own state."""
        rc, out, err = mtx("-f", dev(vl), "status")
        assert (rc, err) == (0, "")
        lines = out.splitlines()
        assert all(STATUS_LINE.match(line) for line in lines), out
        assert lines[0] == f"  Storage Changer {dev(vl)}:2 Drives, 8 Slots ( 2 Import/Export )"
        state = vl.inventory()
        for n in range(1, 7):
            code = state.get(vl.slot_address(n - 1))
            line = lines[2 + n]
            if code is None:
                assert line == f"      Storage Element {n}:Empty"
            else:
                assert line.startswith(f"      Storage Element {n}:Full :VolumeTag={code}")
        assert lines[-1] == "      Storage Element 8 IMPORT/EXPORT:Empty"

    def test_changer_env(self, vl: VirtualLibrary) -> None:
        """Without -f the device comes from $CHANGER, else $TAPE."""
        rc, out, _ = mtx("status", env={"CHANGER": dev(vl)})
        assert rc == 0
        assert out.startswith(f"  Storage Changer {dev(vl)}:")
        rc, out, _ = mtx("status", env={"TAPE": dev(vl)})
        assert rc == 0
        assert out.startswith(f"  Storage Changer {dev(vl)}:")

    def test_empty_changer_variable_counts(self, vl: VirtualLibrary) -> None:
        """An empty $CHANGER is used (as getenv returns it), not skipped for $TAPE."""
        rc, out, err = mtx("status", env={"CHANGER": "", "TAPE": dev(vl)})
        assert (rc, out) == (1, "")
        assert err.startswith("cannot open SCSI device '' - ")

    def test_nobarcode(self, vl: VirtualLibrary) -> None:
        """nobarcode prints no volume tags."""
        rc, out, _ = mtx("-f", dev(vl), "nobarcode", "status")
        assert rc == 0
        assert "VolumeTag" not in out
        assert "Storage Element 1:Full \n" in out


class TestMoves:
    """load, unload, transfer, first/next/previous/last change the library as mtx would."""

    def test_load_then_unload(self, vl: VirtualLibrary) -> None:
        """load prints mtx's progress line and moves the cartridge; unload brings it back."""
        rc, out, err = mtx("-f", dev(vl), "load", "2", "1")
        assert (rc, err) == (0, "")
        assert out == "Loading media from Storage Element 2 into drive 1...done\n"
        assert vl.where("TP0002L8") == vl.drive_address(1)
        rc, out, _ = mtx("-f", dev(vl), "status")
        assert "Data Transfer Element 1:Full (Storage Element 2 Loaded):VolumeTag = TP0002L8" in out
        rc, out, err = mtx("-f", dev(vl), "unload", "2", "1")
        assert (rc, err) == (0, "")
        assert out == "Unloading drive 1 into Storage Element 2...done\n"
        assert vl.where("TP0002L8") == vl.slot_address(1)

    def test_unload_to_source_by_default(self, vl: VirtualLibrary) -> None:
        """unload without a slot uses the slot the cartridge came from."""
        assert mtx("-f", dev(vl), "load", "3")[0] == 0
        rc, out, _ = mtx("-f", dev(vl), "unload")
        assert rc == 0
        assert out == "Unloading drive 0 into Storage Element 3...done\n"
        assert vl.where("TP0003L8") == vl.slot_address(2)

    def test_transfer_is_silent(self, vl: VirtualLibrary) -> None:
        """transfer prints nothing and moves the cartridge between slots."""
        rc, out, err = mtx("-f", dev(vl), "transfer", "1", "6")
        assert (rc, out, err) == (0, "", "")
        assert vl.where("TP0001L8") == vl.slot_address(5)

    def test_several_commands_in_one_call(self, vl: VirtualLibrary) -> None:
        """Commands run in order; status afterwards shows mtx's own (flag-only) update."""
        rc, out, _ = mtx("-f", dev(vl), "load", "1", "0", "status")
        assert rc == 0
        lines = out.splitlines()
        assert lines[0] == "Loading media from Storage Element 1 into drive 0...done"
        assert (
            lines[4] == "      Storage Element 1:Empty:VolumeTag=TP0001L8                        "
        )

    def test_first_next_previous_last(self, vl: VirtualLibrary) -> None:
        """first loads slot 1; next moves on to the next full slot; previous goes back."""
        assert mtx("-f", dev(vl), "first")[1] == (
            "Loading media from Storage Element 1 into drive 0...done\n"
        )
        rc, out, _ = mtx("-f", dev(vl), "next")
        assert rc == 0
        assert out == (
            "Unloading drive 0 into Storage Element 1...done\n"
            "Loading media from Storage Element 2 into drive 0...done\n"
        )
        rc, out, _ = mtx("-f", dev(vl), "previous")
        assert out.endswith("Loading media from Storage Element 1 into drive 0...done\n")
        rc, out, err = mtx("-f", dev(vl), "previous")
        assert (rc, err) == (1, "No More Media\n")
        assert vl.where("TP0001L8") == vl.slot_address(0)

    def test_first_when_already_there(self, vl: VirtualLibrary) -> None:
        """first with slot 1 already loaded prints mtx's 'loading...done.'."""
        mtx("-f", dev(vl), "load", "1")
        assert mtx("-f", dev(vl), "first") == (0, "loading...done.\n", "")


class TestErrors:
    """mtx's messages on stderr and exit status 1."""

    def test_load_full_drive(self, vl: VirtualLibrary) -> None:
        """Loading a full drive names the slot it holds."""
        mtx("-f", dev(vl), "load", "1")
        assert mtx("-f", dev(vl), "load", "2") == (
            1,
            "",
            "Drive 0 Full (Storage Element 1 loaded)\n",
        )

    def test_bad_numbers(self, vl: VirtualLibrary) -> None:
        """Out-of-range slots and drives give mtx's messages."""
        assert mtx("-f", dev(vl), "load", "99")[2] == (
            "Invalid <storage-element-number> argument '99' to 'load' command\n"
        )
        assert mtx("-f", dev(vl), "load", "1", "7")[2] == (
            "illegal <drive-number> argument '7' to 'load' command\n"
        )
        assert mtx("-f", dev(vl), "load")[2] == "No source specified\n"
        assert mtx("-f", dev(vl), "transfer", "1")[2] == "No destination specified\n"
        assert mtx("-f", dev(vl), "transfer", "1", "99")[2] == "Invalid destination\n"
        assert mtx("-f", dev(vl), "unload", "1")[2] == "Data Transfer Element 0 is Empty\n"
        assert mtx("eepos", "7") == (1, "", "eepos equires argument between 0 and 3.\n")

    def test_move_to_full_slot(self, vl: VirtualLibrary) -> None:
        """The changer's 3B/0D refusal becomes mtx's message with the element address."""
        rc, _, err = mtx("-f", dev(vl), "transfer", "1", "2")
        assert rc == 1
        assert err == f"Destination Element Address {vl.slot_address(1)} is Already Full\n"

    def test_usage(self, vl: VirtualLibrary) -> None:
        """An unknown word prints the usage after the commands before it ran."""
        rc, out, err = mtx("-f", dev(vl), "status", "bogus")
        assert rc == 1
        assert out.startswith("  Storage Changer")
        assert err == USAGE
        assert mtx("--version") == (1, "", "mtx version 1.3.12\n\n" + USAGE)

    def test_eject_failure_is_reported_not_fatal(self, vl: VirtualLibrary) -> None:
        """The virtual changer refuses START STOP UNIT: mtx's line on stderr, still exit 0."""
        rc, out, err = mtx("-f", dev(vl), "eject")
        assert (rc, out) == (0, "")
        assert err.startswith("mtx: Request Sense: Long Report=yes\n")
        assert err.endswith("\nEject (0x1B) failed\nmtx:eject failed\n")

    def test_position_and_inventory(self, vl: VirtualLibrary) -> None:
        """position and inventory print nothing on success."""
        assert mtx("-f", dev(vl), "position", "3", "inventory") == (0, "", "")

    def test_no_arguments(self) -> None:
        """mtx with no arguments does nothing and exits 0."""
        assert mtx() == (0, "", "")


class TestFailover:
    """Every command runs with failover over the -f path list."""

    def test_active_control_path_dies_during_load(self, vl: VirtualLibrary) -> None:
        """The MOVE MEDIUM that meets a dead control path completes on the other one."""
        vl.install(
            # the active control path fails as the robot is asked to move
            FaultPlan().add(
                ControlPathFailure(trigger=When(lambda i: i.opcode == 0xA5), drive_too=False)
            )
        )
        rc, out, err = mtx("-f", dev(vl), "load", "4", "0")
        assert (rc, err) == (0, "")
        assert out == "Loading media from Storage Element 4 into drive 0...done\n"
        assert vl.where("TP0004L8") == vl.drive_address(0)
        assert vl.active_control_path() == 1


class TestSecrets:
    """A password in a -f URL never reaches stdout or stderr."""

    def test_status_header_and_errors(self) -> None:
        """The header shows the URL with the password replaced; so do error lines."""
        url = "iscsi://u%s3cr3tpw@127.0.0.1:1/iqn.2026-11.x:y/3?target_password=hunter22"
        rc, out, err = mtx("-f", url, "status")
        assert rc == 1
        assert "s3cr3tpw" not in out + err
        assert "hunter22" not in out + err
        assert err.endswith("READ ELEMENT STATUS Command Failed\n")
        assert err.startswith("tapepath: no path: ")

    def test_header_of_a_working_device(self, vl: VirtualLibrary) -> None:
        """A device reached with a password in its -f text: the header hides it."""

        text = "iscsi://u%s3cr3tpw@10.9.9.9/iqn.2026-11.x:y/3"
        out, err = io.StringIO(), io.StringIO()

        def opener(_paths: object) -> tapepath.Library:
            return tapepath.open_library(vl.changer_urls(), monitor=False)

        rc = run(["-f", text, "status"], out=out, err=err, opener=opener, environ={})
        assert (rc, err.getvalue()) == (0, "")
        first = out.getvalue().splitlines()[0]
        assert first.startswith(
            "  Storage Changer iscsi://u%***@10.9.9.9/iqn.2026-11.x:y/3:2 Drives"
        )


class TestAlias:
    """-f takes an alias of the configuration file."""

    def test_alias(
        self, vl: VirtualLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The alias's paths are used; the header shows the alias as typed."""
        cfg = tmp_path / "tapepath.toml"
        urls = ", ".join(f'"{u}"' for u in vl.changer_urls())
        cfg.write_text(f"[devices.robot]\npaths = [{urls}]\n")
        monkeypatch.setenv("TAPEPATH_CONFIG", str(cfg))
        rc, out, err = mtx("-f", "robot", "load", "5", "status")
        assert (rc, err) == (0, "")
        assert out.startswith("Loading media from Storage Element 5 into drive 0...done\n")
        assert "  Storage Changer robot:2 Drives, 8 Slots ( 2 Import/Export )\n" in out
        assert vl.where("TP0005L8") == vl.drive_address(0)

    def test_unknown_alias(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An alias the configuration lacks: mtx's open failure, exit 1."""
        cfg = tmp_path / "tapepath.toml"
        cfg.write_text("")
        monkeypatch.setenv("TAPEPATH_CONFIG", str(cfg))
        rc, out, err = mtx("-f", "nosuch", "status")
        assert (rc, out) == (1, "")
        assert err.startswith("cannot open SCSI device 'nosuch' - ")


class TestCdbFlags:
    """invert and eepos reach the MOVE MEDIUM CDB as mtx puts them."""

    def test_eepos_and_invert_bits(self) -> None:
        """eepos 2 sets control bits 6-7 to 2; invert sets byte 10 bit 0."""
        sent: list[bytes] = []

        class Lib:
            move_timeout = 300.0

            def execute(self, cdb: bytes, **_kw: object) -> None:
                sent.append(cdb)

            def close(self) -> None:
                pass

        session = MtxSession(out=io.StringIO(), opener=lambda _p: Lib())  # type: ignore[arg-type,return-value]
        session.set_device("x://y")
        session.status = MtxStatus([MtxDrive(256)], [MtxSlot(1024, True), MtxSlot(1025)], 1)
        for step in parse(["eepos", "2", "invert", "transfer", "1", "2"]):
            assert isinstance(step, Command)
            session.run(step)
        (cdb,) = sent
        assert cdb[0] == 0xA5
        assert cdb[11] == 2 << 6
        assert cdb[10] & 1 == 1
        assert int.from_bytes(cdb[2:4], "big") == 1
        assert (int.from_bytes(cdb[4:6], "big"), int.from_bytes(cdb[6:8], "big")) == (1024, 1025)
