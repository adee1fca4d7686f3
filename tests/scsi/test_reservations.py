"""PERSISTENT RESERVE IN and OUT."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapepath.errors import DecodeError
from tapepath.scsi.reservations import (
    FullStatusDescriptor,
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    PrType,
    ReadFullStatus,
    ReadKeys,
    ReadReservation,
    RegisterAndMoveParameters,
    ReportCapabilities,
    TransportId,
)

KEY = 0x0123456789ABCDEF


def _iscsi_tid(name: bytes) -> bytes:
    """An iSCSI TransportID laid out by hand (SPC-4 7.6.4.6): NUL-terminated, 4-aligned."""
    raw = name + b"\0"
    raw += bytes(-len(raw) % 4)
    return bytes([0x05, 0x00]) + len(raw).to_bytes(2, "big") + raw


class TestCdbs:
    """PR IN and PR OUT CDBs."""

    def test_in_layout(self) -> None:
        """5Eh: service action byte 1, allocation length bytes 7-8."""
        cdb = PersistentReserveIn(PrInAction.READ_FULL_STATUS, 0x1000).to_bytes()
        assert cdb == bytes([0x5E, 0x03, 0, 0, 0, 0, 0, 0x10, 0x00, 0])

    def test_out_layout(self) -> None:
        """5Fh: service action byte 1, scope/type byte 2, 32-bit list length bytes 5-8."""
        cdb = PersistentReserveOut(PrOutAction.RESERVE, PrType.EXCLUSIVE_ACCESS, 0, 24).to_bytes()
        assert cdb == bytes([0x5F, 0x01, 0x03, 0, 0, 0, 0, 0, 24, 0])

    @pytest.mark.parametrize("action", list(PrOutAction))
    @pytest.mark.parametrize("pr_type", [0, *list(PrType)])
    def test_out_every_action_and_type(self, action: PrOutAction, pr_type: int) -> None:
        """Every service action and type round-trips and keeps its enum."""
        cmd = PersistentReserveOut(action, pr_type)
        back = PersistentReserveOut.from_bytes(cmd.to_bytes())
        assert back == cmd
        assert back.service_action is action

    @given(st.integers(0, 31), st.integers(0, 0xFFFF), st.integers(0, 255))
    def test_in_round_trip(self, sa: int, alloc: int, control: int) -> None:
        """from_bytes(to_bytes()) is the identity."""
        cmd = PersistentReserveIn(sa, alloc, control)
        assert PersistentReserveIn.from_bytes(cmd.to_bytes()) == cmd

    def test_ranges_and_reserved(self) -> None:
        """Out-of-range fields and reserved bits are refused."""
        with pytest.raises(ValueError, match="service_action"):
            PersistentReserveOut(32)
        with pytest.raises(ValueError, match="pr_type"):
            PersistentReserveOut(1, 16)
        with pytest.raises(DecodeError):
            PersistentReserveIn.from_bytes(bytes([0x5E, 0x20, 0, 0, 0, 0, 0, 0, 8, 0]))
        with pytest.raises(DecodeError):
            PersistentReserveOut.from_bytes(bytes([0x5F, 0, 0, 1, 0, 0, 0, 0, 24, 0]))

    def test_for_parameters(self) -> None:
        """The list length comes from the data; the move variant needs its own list."""
        cdb, data = PersistentReserveOut.for_parameters(
            PrOutAction.REGISTER, PrOutParameters(0, KEY, aptpl=True)
        )
        assert cdb.parameter_list_length == len(data) == 24
        cdb.check_data_out(data)
        with pytest.raises(ValueError, match="parameter_list_length"):
            cdb.check_data_out(data + b"\0")
        with pytest.raises(ValueError, match="REGISTER AND MOVE"):
            PersistentReserveOut.for_parameters(PrOutAction.REGISTER_AND_MOVE, PrOutParameters())


class TestOutParameters:
    """PR OUT parameter lists against hand-made layouts."""

    def test_basic(self) -> None:
        """Keys, then byte 20: SPEC_I_PT bit 3, ALL_TG_PT bit 2, APTPL bit 0."""
        raw = KEY.to_bytes(8, "big") + (7).to_bytes(8, "big") + bytes(4) + bytes([0x05, 0, 0, 0])
        p = PrOutParameters.from_bytes(raw)
        assert p.reservation_key == KEY
        assert p.service_action_reservation_key == 7
        assert p.all_tg_pt
        assert p.aptpl
        assert not p.spec_i_pt
        assert p.to_bytes() == raw

    def test_spec_i_pt(self) -> None:
        """SPEC_I_PT adds a 32-bit TransportID list length and the TransportIDs."""
        tid = _iscsi_tid(b"iqn.2026-11.example:host2")
        raw = bytes(8) + KEY.to_bytes(8, "big") + bytes(4) + bytes([0x08, 0, 0, 0])
        raw += len(tid).to_bytes(4, "big") + tid
        p = PrOutParameters.from_bytes(raw)
        assert p.spec_i_pt
        assert [t.iscsi_name for t in p.transport_ids] == ["iqn.2026-11.example:host2"]
        assert p.to_bytes() == raw
        assert TransportId.iscsi("iqn.2026-11.example:host2").to_bytes() == tid

    def test_register_and_move(self) -> None:
        """REGISTER AND MOVE: UNREG/APTPL byte 17, relative target port 18-19, one TransportID."""
        tid = _iscsi_tid(b"iqn.x,i,0x23d000000001")
        raw = KEY.to_bytes(8, "big") + (9).to_bytes(8, "big") + bytes([0, 0x03, 0, 2])
        raw += len(tid).to_bytes(4, "big") + tid
        p = RegisterAndMoveParameters.from_bytes(raw)
        assert p.unreg
        assert p.aptpl
        assert p.relative_target_port == 2
        assert p.transport_id.iscsi_name == "iqn.x,i,0x23d000000001"
        assert p.to_bytes() == raw
        cdb, data = PersistentReserveOut.for_parameters(PrOutAction.REGISTER_AND_MOVE, p, pr_type=3)
        assert data == raw
        assert cdb.parameter_list_length == len(raw)

    def test_bad_lists(self) -> None:
        """Wrong lengths and reserved bits are DecodeErrors."""
        with pytest.raises(DecodeError):
            PrOutParameters.from_bytes(bytes(23))
        with pytest.raises(DecodeError):
            PrOutParameters.from_bytes(bytes(25))
        with pytest.raises(DecodeError):
            PrOutParameters.from_bytes(bytes(20) + bytes([0x10, 0, 0, 0]))
        with pytest.raises(DecodeError):
            RegisterAndMoveParameters.from_bytes(bytes(20) + (99).to_bytes(4, "big"))
        with pytest.raises(ValueError, match="spec_i_pt"):
            PrOutParameters(transport_ids=(TransportId.fc(1),))

    def test_fc_and_sas(self) -> None:
        """FC and SAS TransportIDs are 24 bytes with the name at bytes 8 / 4."""
        fc = TransportId.fc(0x2100001B32A1B2C3).to_bytes()
        assert len(fc) == 24
        assert fc[0] == 0
        assert fc[8:16] == bytes.fromhex("2100001B32A1B2C3")
        sas = TransportId.sas(0x5000C50012345678)
        assert sas.to_bytes()[4:12] == bytes.fromhex("5000C50012345678")
        assert TransportId.from_bytes(sas.to_bytes()).port_name == 0x5000C50012345678


class TestInData:
    """PR IN data against hand-made layouts."""

    def test_read_keys(self) -> None:
        """Generation, additional length, 8-byte keys."""
        raw = bytes([0, 0, 0, 5, 0, 0, 0, 16]) + KEY.to_bytes(8, "big") + (1).to_bytes(8, "big")
        keys = ReadKeys.from_bytes(raw)
        assert keys.generation == 5
        assert keys.keys == (KEY, 1)
        assert not keys.truncated
        assert keys.to_bytes() == raw
        cut = ReadKeys.from_bytes(raw[:20])
        assert cut.keys == (KEY,)
        assert cut.truncated

    def test_read_reservation(self) -> None:
        """No reservation: 8 bytes; one: key, scope/type at byte 21."""
        assert ReadReservation.from_bytes(bytes([0, 0, 0, 9, 0, 0, 0, 0])) == ReadReservation(9)
        raw = (
            bytes([0, 0, 0, 9, 0, 0, 0, 16])
            + KEY.to_bytes(8, "big")
            + bytes([0] * 5 + [0x06, 0, 0])
        )
        r = ReadReservation.from_bytes(raw)
        assert r.reservation_key == KEY
        assert r.pr_type is PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY
        assert r.scope == 0
        assert r.to_bytes() == raw
        with pytest.raises(DecodeError):
            ReadReservation.from_bytes(bytes([0, 0, 0, 9, 0, 0, 0, 8]) + bytes(8))

    def test_report_capabilities(self) -> None:
        """Capability bits and the type mask (SPC-4 table 171)."""
        raw = bytes([0x00, 0x08, 0x9D, 0x91, 0xEA, 0x01, 0, 0])
        c = ReportCapabilities.from_bytes(raw)
        assert c.rlr_c
        assert c.crh
        assert c.sip_c
        assert c.atp_c
        assert c.ptpl_c
        assert c.tmv
        assert c.allow_commands == 1
        assert c.ptpl_a
        assert c.supported_types == frozenset(PrType)
        assert c.to_bytes() == raw
        assert ReportCapabilities.mask_for(set(PrType)) == 0xEA01
        only = ReportCapabilities(tmv=True, type_mask=0x0800)
        assert only.supported_types == frozenset({PrType.EXCLUSIVE_ACCESS})
        assert ReportCapabilities(type_mask=0xFFFF).supported_types == frozenset()

    def test_read_full_status(self) -> None:
        """A descriptor: key, ALL_TG_PT/R_HOLDER byte 12, scope/type 13, port 18-19, TransportID."""
        tid = _iscsi_tid(b"iqn.2026-11.example:host1")
        desc = KEY.to_bytes(8, "big") + bytes(4) + bytes([0x03, 0x01]) + bytes(4)
        desc += (2).to_bytes(2, "big") + len(tid).to_bytes(4, "big") + tid
        raw = bytes([0, 0, 0, 3]) + len(desc).to_bytes(4, "big") + desc
        fs = ReadFullStatus.from_bytes(raw)
        (d,) = fs.descriptors
        assert fs.generation == 3
        assert d.reservation_key == KEY
        assert d.all_tg_pt
        assert d.r_holder
        assert d.pr_type is PrType.WRITE_EXCLUSIVE
        assert d.relative_target_port == 2
        assert d.transport_id.iscsi_name == "iqn.2026-11.example:host1"
        assert fs.to_bytes() == raw
        assert ReadFullStatus.from_bytes(raw[:30]).descriptors == ()

    def test_descriptor_overrun(self) -> None:
        """A complete list whose descriptor overruns it is a DecodeError."""
        desc = bytes(20) + (100).to_bytes(4, "big")
        with pytest.raises(DecodeError):
            ReadFullStatus.from_bytes(bytes(4) + len(desc).to_bytes(4, "big") + desc)


_tid = st.one_of(
    st.builds(TransportId.fc, st.integers(0, 2**64 - 1)),
    st.builds(TransportId.sas, st.integers(0, 2**64 - 1)),
    st.builds(
        TransportId.iscsi,
        st.text("abcdefghijklmnopqrstuvwxyz.:-0123456789", min_size=1, max_size=40),
        st.one_of(st.none(), st.text("0123456789abcdef", min_size=12, max_size=12)),
    ),
)
_key = st.integers(0, 2**64 - 1)


class TestProperties:
    """Round trips and arbitrary input."""

    @given(_key, _key, st.booleans(), st.booleans(), st.lists(_tid, max_size=3))
    def test_out_round_trip(
        self, k: int, sk: int, atp: bool, aptpl: bool, tids: list[TransportId]
    ) -> None:
        """PR OUT parameter lists round-trip."""
        p = PrOutParameters(k, sk, bool(tids), atp, aptpl, tuple(tids))
        assert PrOutParameters.from_bytes(p.to_bytes()) == p

    @given(_key, _key, _tid, st.integers(0, 0xFFFF), st.booleans(), st.booleans())
    def test_move_round_trip(
        self, k: int, sk: int, tid: TransportId, port: int, unreg: bool, aptpl: bool
    ) -> None:
        """REGISTER AND MOVE lists round-trip."""
        p = RegisterAndMoveParameters(k, sk, tid, port, unreg, aptpl)
        assert RegisterAndMoveParameters.from_bytes(p.to_bytes()) == p

    @given(
        st.integers(0, 2**32 - 1),
        st.lists(
            st.builds(
                FullStatusDescriptor,
                _key,
                _tid,
                st.booleans(),
                st.booleans(),
                st.integers(0, 15),
                st.integers(0, 15),
                st.integers(0, 0xFFFF),
            ),
            max_size=4,
        ),
        st.lists(_key, max_size=6),
    )
    def test_in_round_trip(
        self, gen: int, descs: list[FullStatusDescriptor], keys: list[int]
    ) -> None:
        """PR IN data round-trips."""
        fs = ReadFullStatus(gen, tuple(descs))
        assert ReadFullStatus.from_bytes(fs.to_bytes()) == fs
        rk = ReadKeys(gen, tuple(keys))
        assert ReadKeys.from_bytes(rk.to_bytes()) == rk

    @given(st.binary(max_size=200))
    def test_arbitrary(self, raw: bytes) -> None:
        """Every parser takes arbitrary bytes and gives a result or DecodeError."""
        for cls in (
            ReadKeys,
            ReadReservation,
            ReportCapabilities,
            ReadFullStatus,
            PrOutParameters,
            RegisterAndMoveParameters,
            TransportId,
            PersistentReserveIn,
            PersistentReserveOut,
        ):
            with contextlib.suppress(DecodeError):
                cls.from_bytes(raw)  # type: ignore[attr-defined]

    def test_huge_lengths(self) -> None:
        """Length fields of 4 GiB over short buffers allocate nothing."""
        assert ReadKeys.from_bytes(bytes(4) + b"\xff\xff\xff\xff").keys == ()
        assert ReadFullStatus.from_bytes(bytes(4) + b"\xff\xff\xff\xff").descriptors == ()
        with pytest.raises(DecodeError):
            PrOutParameters.from_bytes(bytes(20) + bytes([8, 0, 0, 0]) + b"\xff\xff\xff\xff")
