"""Tests of the SMC movement commands: MOVE/EXCHANGE MEDIUM, INITIALIZE ELEMENT STATUS
(and WITH RANGE), POSITION TO ELEMENT, PREVENT ALLOW MEDIUM REMOVAL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.changer import (
    ExchangeMedium,
    InitializeElementStatus,
    InitializeElementStatusWithRange,
    MoveMedium,
    PositionToElement,
    PreventAllowMediumRemoval,
)

addr = st.integers(0, 0xFFFF)
byte = st.integers(0, 0xFF)


class TestMoveMedium:
    """MOVE MEDIUM A5h: 12 bytes, three addresses and INVERT."""

    def test_layout(self) -> None:
        """Transport at 2-3, source 4-5, destination 6-7, INVERT byte 10 bit 0."""
        cdb = MoveMedium(
            transport=0x0001, source=0x03E8, destination=0x01F4, invert=True
        ).to_bytes()
        assert cdb == bytes.fromhex("a5 00 0001 03e8 01f4 0000 01 00")

    def test_parse_hand_built(self) -> None:
        """A CDB as mtx sends it parses into its fields."""
        cmd = MoveMedium.from_bytes(bytes.fromhex("a5 00 0000 0400 0100 0000 00 80"))
        assert (cmd.transport, cmd.source, cmd.destination, cmd.invert, cmd.control) == (
            0,
            0x400,
            0x100,
            False,
            0x80,
        )
        assert cmd.data_in_length == 0

    @given(addr, addr, addr, st.booleans(), byte)
    def test_round_trip(self, t: int, s: int, d: int, inv: bool, c: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = MoveMedium(t, s, d, inv, c)
        assert MoveMedium.from_bytes(cmd.to_bytes()) == cmd

    @pytest.mark.parametrize("name", ["transport", "source", "destination"])
    @pytest.mark.parametrize("value", [-1, 0x10000])
    def test_range(self, name: str, value: int) -> None:
        """An address outside 16 bits is refused, naming the field."""
        with pytest.raises(ValueError, match=name):
            MoveMedium(**{name: value})

    def test_invert_must_be_bool(self) -> None:
        """INVERT is a flag."""
        with pytest.raises(ValueError, match="invert"):
            MoveMedium(invert=1)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("index", "value"), [(1, 0x20), (8, 1), (9, 1), (10, 0x02)])
    def test_reserved(self, index: int, value: int) -> None:
        """A reserved bit set is a DecodeError."""
        cdb = bytearray(MoveMedium(1, 2, 3).to_bytes())
        cdb[index] |= value
        with pytest.raises(DecodeError, match="reserved"):
            MoveMedium.from_bytes(bytes(cdb))

    def test_wrong_opcode_and_length(self) -> None:
        """Another opcode or length is a DecodeError."""
        with pytest.raises(DecodeError, match="opcode"):
            MoveMedium.from_bytes(b"\xa6" + bytes(11))
        with pytest.raises(DecodeError, match="12 bytes"):
            MoveMedium.from_bytes(b"\xa5" + bytes(10))


class TestExchangeMedium:
    """EXCHANGE MEDIUM A6h: four addresses, INV1 and INV2."""

    def test_layout(self) -> None:
        """Second destination at 8-9; INV1 bit 1 and INV2 bit 0 of byte 10."""
        cmd = ExchangeMedium(1, 0x100, 0x200, 0x300, inv1=False, inv2=True, control=0)
        assert cmd.to_bytes() == bytes.fromhex("a6 00 0001 0100 0200 0300 01 00")
        assert ExchangeMedium(inv1=True).to_bytes()[10] == 0x02
        both = ExchangeMedium(0, 0, 0, 0, inv1=True, inv2=True)
        assert both.to_bytes()[10] == 0x03

    @given(st.builds(ExchangeMedium, addr, addr, addr, addr, st.booleans(), st.booleans(), byte))
    def test_round_trip(self, cmd: ExchangeMedium) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert ExchangeMedium.from_bytes(cmd.to_bytes()) == cmd

    @pytest.mark.parametrize(
        "name", ["transport", "source", "first_destination", "second_destination"]
    )
    def test_range(self, name: str) -> None:
        """Every address is range checked."""
        with pytest.raises(ValueError, match=name):
            ExchangeMedium(**{name: 0x10000})

    def test_reserved(self) -> None:
        """Byte 10 bits 7-2 are reserved."""
        cdb = bytearray(ExchangeMedium().to_bytes())
        cdb[10] = 0x04
        with pytest.raises(DecodeError):
            ExchangeMedium.from_bytes(bytes(cdb))


class TestInitializeElementStatus:
    """INITIALIZE ELEMENT STATUS 07h and WITH RANGE 37h."""

    def test_plain(self) -> None:
        """Six bytes, only the opcode and control."""
        assert InitializeElementStatus().to_bytes() == bytes.fromhex("07 00 00 00 00 00")
        assert InitializeElementStatus.from_bytes(bytes.fromhex("07 00 00 00 00 04")).control == 4
        with pytest.raises(DecodeError):
            InitializeElementStatus.from_bytes(bytes.fromhex("07 01 00 00 00 00"))

    def test_with_range_layout(self) -> None:
        """RANGE bit 0 and FAST bit 1 of byte 1; start 2-3; count 6-7."""
        cmd = InitializeElementStatusWithRange(
            range_=True, fast=True, starting_address=0x1000, number_of_elements=0x20
        )
        assert cmd.to_bytes() == bytes.fromhex("37 03 1000 0000 0020 00 00")

    @given(
        st.builds(InitializeElementStatusWithRange, st.booleans(), st.booleans(), addr, addr, byte)
    )
    def test_with_range_round_trip(self, cmd: InitializeElementStatusWithRange) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert InitializeElementStatusWithRange.from_bytes(cmd.to_bytes()) == cmd

    def test_with_range_checks(self) -> None:
        """Range checks and reserved bytes."""
        with pytest.raises(ValueError, match="number_of_elements"):
            InitializeElementStatusWithRange(number_of_elements=-1)
        with pytest.raises(DecodeError):
            InitializeElementStatusWithRange.from_bytes(bytes.fromhex("37 00 0000 0100 0000 00 00"))


class TestPositionToElement:
    """POSITION TO ELEMENT 2Bh (the changer meaning of 2Bh)."""

    def test_layout(self) -> None:
        """Transport 2-3, destination 4-5, INVERT byte 8 bit 0."""
        cmd = PositionToElement(transport=1, destination=0x0102, invert=True)
        assert cmd.to_bytes() == bytes.fromhex("2b 00 0001 0102 00 00 01 00")

    @given(st.builds(PositionToElement, addr, addr, st.booleans(), byte))
    def test_round_trip(self, cmd: PositionToElement) -> None:
        """from_bytes(to_bytes()) is the identity."""
        assert PositionToElement.from_bytes(cmd.to_bytes()) == cmd

    def test_checks(self) -> None:
        """Range, reserved bits, length."""
        with pytest.raises(ValueError, match="destination"):
            PositionToElement(destination=70000)
        with pytest.raises(DecodeError):
            PositionToElement.from_bytes(bytes.fromhex("2b 00 0001 0102 01 00 00 00"))
        with pytest.raises(DecodeError):
            PositionToElement.from_bytes(bytes.fromhex("2b 00 0001 0102 00 00 00"))


class TestPreventAllow:
    """PREVENT ALLOW MEDIUM REMOVAL 1Eh."""

    def test_layout(self) -> None:
        """PREVENT is byte 4 bits 1-0."""
        assert PreventAllowMediumRemoval(prevent=1).to_bytes() == bytes.fromhex("1e 00 00 00 01 00")
        assert PreventAllowMediumRemoval(prevent=0).to_bytes() == bytes.fromhex("1e 00 00 00 00 00")

    @given(st.integers(0, 3), byte)
    def test_round_trip(self, prevent: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = PreventAllowMediumRemoval(prevent, control)
        assert PreventAllowMediumRemoval.from_bytes(cmd.to_bytes()) == cmd

    def test_checks(self) -> None:
        """PREVENT has 2 bits; byte 4 bits 7-2 are reserved."""
        with pytest.raises(ValueError, match="prevent"):
            PreventAllowMediumRemoval(prevent=4)
        with pytest.raises(DecodeError):
            PreventAllowMediumRemoval.from_bytes(bytes.fromhex("1e 00 00 00 05 00"))


class TestPyscsiOracle:
    """pyscsi's CDB field tables decode our movement CDBs the same way."""

    @staticmethod
    def decode(module: str, cls: str, cdb: bytes) -> dict[str, int]:
        mod = pytest.importorskip(f"pyscsi.pyscsi.{module}")
        conv = pytest.importorskip("pyscsi.utils.converter")
        out: dict[str, int] = {}
        conv.decode_bits(bytearray(cdb), getattr(mod, cls)._cdb_bits, out)
        return out

    @given(st.builds(MoveMedium, addr, addr, addr, st.booleans()))
    def test_move_medium(self, cmd: MoveMedium) -> None:
        """MOVE MEDIUM fields."""
        out = self.decode("scsi_cdb_movemedium", "MoveMedium", cmd.to_bytes())
        assert out == {
            "opcode": 0xA5,
            "medium_transport_address": cmd.transport,
            "source_address": cmd.source,
            "destination_address": cmd.destination,
            "invert": int(cmd.invert),
        }

    @given(st.builds(ExchangeMedium, addr, addr, addr, addr, st.booleans(), st.booleans()))
    def test_exchange_medium(self, cmd: ExchangeMedium) -> None:
        """EXCHANGE MEDIUM fields, INV1 and INV2 included."""
        out = self.decode("scsi_cdb_exchangemedium", "ExchangeMedium", cmd.to_bytes())
        assert out == {
            "opcode": 0xA6,
            "medium_transport_address": cmd.transport,
            "source_address": cmd.source,
            "first_destination_address": cmd.first_destination,
            "second_destination_address": cmd.second_destination,
            "inv1": int(cmd.inv1),
            "inv2": int(cmd.inv2),
        }

    @given(st.builds(PositionToElement, addr, addr, st.booleans()))
    def test_position_to_element(self, cmd: PositionToElement) -> None:
        """POSITION TO ELEMENT fields."""
        out = self.decode("scsi_cdb_positiontoelement", "PositionToElement", cmd.to_bytes())
        assert out == {
            "opcode": 0x2B,
            "medium_transport_address": cmd.transport,
            "destination_address": cmd.destination,
            "invert": int(cmd.invert),
        }

    @given(st.builds(InitializeElementStatusWithRange, st.booleans(), st.booleans(), addr, addr))
    def test_initialize_with_range(self, cmd: InitializeElementStatusWithRange) -> None:
        """INITIALIZE ELEMENT STATUS WITH RANGE fields."""
        out = self.decode(
            "scsi_cdb_initelementstatuswithrange",
            "InitializeElementStatusWithRange",
            cmd.to_bytes(),
        )
        assert out == {
            "opcode": 0x37,
            "fast": int(cmd.fast),
            "range": int(cmd.range_),
            "starting_element_address": cmd.starting_address,
            "number_of_elements": cmd.number_of_elements,
        }
