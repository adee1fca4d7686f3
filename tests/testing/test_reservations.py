"""Persistent reservations per I_T nexus, through the model and through sim:// paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tapepath
from tapepath.scsi.reservations import (
    PersistentReserveIn,
    PersistentReserveOut,
    PrInAction,
    PrOutAction,
    PrOutParameters,
    PrType,
    ReadFullStatus,
    ReadKeys,
    ReadReservation,
)
from tapepath.scsi.tape import Write6
from tapepath.testing import VirtualLibrary
from tapepath.testing._check import Check
from tapepath.testing.reservations import (
    Access,
    Conflict,
    PersistentReservations,
    ReservationType,
)
from tapepath.transport import Status, Transport
from tests.testing.helpers import ready, sense_of

A, B = "iqn.a", "iqn.b"


class TestModel:
    """The PersistentReservations model on its own."""

    def test_register_reserve_conflict(self) -> None:
        """A holder of EXCLUSIVE ACCESS excludes others; reads pass under WRITE EXCLUSIVE."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 0xAA)
        pr.reserve(A, 1, 0xAA, ReservationType.EXCLUSIVE_ACCESS)
        pr.check_access(A, 1, Access.WRITE)
        with pytest.raises(Conflict):
            pr.check_access(B, 1, Access.READ)
        pr.check_access(B, 1, Access.ALWAYS)
        pr.release(A, 1, 0xAA, ReservationType.EXCLUSIVE_ACCESS)
        pr.reserve(A, 1, 0xAA, ReservationType.WRITE_EXCLUSIVE)
        pr.check_access(B, 1, Access.READ)
        with pytest.raises(Conflict):
            pr.check_access(B, 1, Access.WRITE)

    def test_registration_is_per_port_unless_all_tg_pt(self) -> None:
        """A registration covers its own port; ALL_TG_PT covers every port."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 0xAA)
        assert pr.key_of(A, 2) is None
        pr.register(B, 1, 0, 0xBB, all_tg_pt=True)
        assert pr.key_of(B, 2) == 0xBB

    def test_wrong_key_conflicts(self) -> None:
        """REGISTER with a wrong current key is a conflict; IGNORE EXISTING KEY is not."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 0xAA)
        with pytest.raises(Conflict):
            pr.register(A, 1, 0x99, 0xBB)
        pr.register(A, 1, 0x99, 0xBB, ignore_existing=True)
        assert pr.key_of(A, 1) == 0xBB

    def test_registrants_only(self) -> None:
        """WRITE EXCLUSIVE REGISTRANTS ONLY lets registrants write, others only read."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 1)
        pr.register(B, 1, 0, 2)
        pr.reserve(A, 1, 1, ReservationType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY)
        pr.check_access(B, 1, Access.WRITE)
        with pytest.raises(Conflict):
            pr.check_access("iqn.c", 1, Access.WRITE)
        pr.check_access("iqn.c", 1, Access.READ)
        notices = pr.release(A, 1, 1, ReservationType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY)
        assert notices == [((B, 1), 0x2A, 0x04)]

    def test_all_registrants_survives_holder_leaving(self) -> None:
        """Under ALL REGISTRANTS the reservation stays while a registrant remains."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 1)
        pr.register(B, 1, 0, 2)
        pr.reserve(A, 1, 1, ReservationType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS)
        assert pr.is_holder(B, 1)
        pr.register(A, 1, 1, 0)
        assert pr.reservation is not None
        pr.register(B, 1, 2, 0)
        assert pr.reservation is None

    def test_preempt_moves_reservation(self) -> None:
        """The LTFS move: same key on the new nexus, then PREEMPT with it."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 0x77)
        pr.reserve(A, 1, 0x77, ReservationType.EXCLUSIVE_ACCESS)
        pr.register(A, 2, 0, 0x77, ignore_existing=True)
        notices = pr.preempt(A, 2, 0x77, 0x77, ReservationType.EXCLUSIVE_ACCESS)
        assert notices == [((A, 1), 0x2A, 0x05)]
        assert pr.reservation is not None
        assert pr.reservation.holder == (A, 2)
        assert pr.key_of(A, 1) is None

    def test_preempt_other_holder(self) -> None:
        """PREEMPT of another holder's key takes the reservation and drops its registration."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 1)
        pr.register(B, 1, 0, 2)
        pr.reserve(A, 1, 1, ReservationType.WRITE_EXCLUSIVE)
        gen = pr.generation
        notices = pr.preempt(B, 1, 2, 1, ReservationType.EXCLUSIVE_ACCESS)
        assert ((A, 1), 0x2A, 0x05) in notices
        assert pr.is_holder(B, 1)
        assert pr.generation == gen + 1

    def test_preempt_zero_without_reservation_is_illegal(self) -> None:
        """PREEMPT with service action key 0 and no reservation: 26/00."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 1)
        with pytest.raises(Check):
            pr.preempt(A, 1, 1, 0, 1)

    def test_clear_and_aptpl(self) -> None:
        """CLEAR drops all; power loss keeps registrations only with APTPL."""
        pr = PersistentReservations()
        pr.register(A, 1, 0, 1)
        pr.register(B, 1, 0, 2)
        assert pr.clear(A, 1, 1) == [((B, 1), 0x2A, 0x03)]
        assert not pr.registrations
        pr.register(A, 1, 0, 1, aptpl=True)
        pr.power_loss()
        assert pr.key_of(A, 1) == 1
        pr.register(A, 1, 1, 1, aptpl=False)
        pr.power_loss()
        assert pr.key_of(A, 1) is None


@pytest.fixture
def lib() -> Iterator[VirtualLibrary]:
    with VirtualLibrary("prlib") as lib:
        lib.insert(lib.drive_address(0), "PR0001L8")
        yield lib


def pr_out(
    t: Transport, sa: int, key: int = 0, sa_key: int = 0, rtype: int = 0, **flags: bool
) -> tapepath.Response:
    params = PrOutParameters(key, sa_key, **flags)
    cmd, data = PersistentReserveOut.for_parameters(sa, params, pr_type=rtype)
    return t.execute(cmd.to_bytes(), data_out=data)


def pr_in(t: Transport, sa: int) -> bytes:
    r = t.execute(PersistentReserveIn(sa).to_bytes(), data_in_len=1024)
    assert r.ok, r
    return r.data


class TestOverScsi:
    """PERSISTENT RESERVE IN/OUT on a drive's ports."""

    def test_reservation_blocks_other_port_and_moves(self, lib: VirtualLibrary) -> None:
        """A reservation on port 0 blocks port 1; the LTFS move makes port 1 the holder."""
        url0, url1 = lib.drive_urls(0)
        p0 = ready(url0)
        p1 = ready(url1)
        assert pr_out(p0, PrOutAction.REGISTER, sa_key=0x1234).ok
        assert pr_out(p0, PrOutAction.RESERVE, 0x1234, rtype=PrType.EXCLUSIVE_ACCESS).ok
        w = Write6.for_data(b"data")
        r = p1.execute(w.to_bytes(), data_out=b"data")
        assert r.status == Status.RESERVATION_CONFLICT
        assert lib.tape(0) is not None
        assert lib.tape(0).records() == []  # type: ignore[union-attr]
        rr = ReadReservation.from_bytes(pr_in(p1, PrInAction.READ_RESERVATION))
        assert rr.reservation_key == 0x1234
        assert int(rr.pr_type) == PrType.EXCLUSIVE_ACCESS
        r = pr_out(p1, PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY, sa_key=0x1234)
        assert r.ok
        r = pr_out(p1, PrOutAction.PREEMPT, 0x1234, 0x1234, rtype=PrType.EXCLUSIVE_ACCESS)
        assert r.ok
        assert p1.execute(w.to_bytes(), data_out=b"data").ok
        assert sense_of(p0.execute(bytes(6))) == (6, 0x2A, 0x05)
        assert p0.execute(w.to_bytes(), data_out=b"data").status == Status.RESERVATION_CONFLICT

    def test_read_keys_and_full_status(self, lib: VirtualLibrary) -> None:
        """READ KEYS lists registrations; READ FULL STATUS names holder and ALL_TG_PT."""
        p0 = ready(lib.drive_urls(0)[0])
        assert pr_out(p0, PrOutAction.REGISTER, sa_key=5, all_tg_pt=True).ok
        assert pr_out(p0, PrOutAction.RESERVE, 5, rtype=PrType.WRITE_EXCLUSIVE).ok
        keys = ReadKeys.from_bytes(pr_in(p0, PrInAction.READ_KEYS))
        assert keys.keys == (5,)
        assert keys.generation == 1
        full = ReadFullStatus.from_bytes(pr_in(p0, PrInAction.READ_FULL_STATUS))
        (d,) = full.descriptors
        assert d.all_tg_pt
        assert d.r_holder
        assert d.transport_id.iscsi_name == "sim-initiator"
        p1 = ready(lib.drive_urls(0)[1])
        assert p1.execute(Write6.for_data(b"x").to_bytes(), data_out=b"x").ok

    def test_two_initiators_on_one_port(self, lib: VirtualLibrary) -> None:
        """Initiators named in the URL are distinct I_T nexuses on the same port."""
        url = lib.drive_urls(0)[0]
        a = ready(url + "&initiator=iqn.2026-11.test:a")
        b = ready(url + "&initiator=iqn.2026-11.test:b")
        assert pr_out(a, PrOutAction.REGISTER, sa_key=1).ok
        assert pr_out(a, PrOutAction.RESERVE, 1, rtype=PrType.WRITE_EXCLUSIVE).ok
        r = b.execute(Write6.for_data(b"x").to_bytes(), data_out=b"x")
        assert r.status == Status.RESERVATION_CONFLICT
        assert a.execute(Write6.for_data(b"x").to_bytes(), data_out=b"x").ok
        full = ReadFullStatus.from_bytes(pr_in(b, PrInAction.READ_FULL_STATUS))
        assert [d.transport_id.iscsi_name for d in full.descriptors] == ["iqn.2026-11.test:a"]

    def test_unregistered_reserve_conflicts(self, lib: VirtualLibrary) -> None:
        """RESERVE without registering: RESERVATION CONFLICT."""
        p0 = ready(lib.drive_urls(0)[0])
        r = pr_out(p0, PrOutAction.RESERVE, 9, rtype=PrType.EXCLUSIVE_ACCESS)
        assert r.status == Status.RESERVATION_CONFLICT

    def test_bad_parameter_length(self, lib: VirtualLibrary) -> None:
        """A parameter list length that is not 24 bytes of data: 1A/00."""
        p0 = ready(lib.drive_urls(0)[0])
        cmd = PersistentReserveOut(PrOutAction.REGISTER, parameter_list_length=8)
        r = p0.execute(cmd.to_bytes(), data_out=bytes(8))
        assert sense_of(r) == (5, 0x1A, 0x00)

    def test_aptpl_survives_power_cycle(self, lib: VirtualLibrary) -> None:
        """With APTPL the reservation survives a power cycle; without, it is gone."""
        p0 = ready(lib.drive_urls(0)[0])
        assert pr_out(p0, PrOutAction.REGISTER, sa_key=7, aptpl=True).ok
        assert pr_out(p0, PrOutAction.RESERVE, 7, rtype=PrType.EXCLUSIVE_ACCESS).ok
        lib.power_cycle()
        assert sense_of(p0.execute(bytes(6))) == (6, 0x29, 0x00)
        rr = ReadReservation.from_bytes(pr_in(p0, PrInAction.READ_RESERVATION))
        assert rr.reservation_key == 7
        assert pr_out(p0, PrOutAction.REGISTER, 7, 7, aptpl=False).ok
        lib.power_cycle()
        p0.execute(bytes(6))
        rr = ReadReservation.from_bytes(pr_in(p0, PrInAction.READ_RESERVATION))
        assert rr.reservation_key is None
