"""Tracking the tape position and the settings from the command stream."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapepath.recovery import ChangerState, TapeRecovery, TrackedPosition
from tapepath.recovery.tracking import DeviceState, TapeState
from tapepath.scsi.mode import BlockDescriptor, ModeParameters, ModeSelect6
from tapepath.scsi.position import PositionShort, ReadPosition
from tapepath.scsi.reservations import PersistentReserveOut, PrOutAction, PrOutParameters
from tapepath.scsi.tape import Locate10, Read6, Rewind, Space6, Write6, WriteFilemarks6
from tapepath.transport.base import Outcome, Response

from .support import library, send, tape_device

COMMAND = st.one_of(
    st.tuples(st.just("write"), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("wfm"), st.integers(0, 2)),
    st.tuples(st.just("space"), st.integers(-4, 4)),
    st.tuples(st.just("spacefm"), st.integers(-2, 2)),
    st.tuples(st.just("locate"), st.integers(0, 8)),
    st.tuples(st.just("read"), st.integers(1, 8)),
    st.tuples(st.just("rewind"), st.just(0)),
    st.tuples(st.just("readpos"), st.sampled_from([0, 6])),
)


def _cdb(kind: str, arg: int | bytes) -> tuple[bytes, bytes, int]:
    if kind == "write":
        assert isinstance(arg, bytes)
        return Write6.for_data(arg).to_bytes(), arg, 0
    assert isinstance(arg, int)
    if kind == "wfm":
        return WriteFilemarks6(arg).to_bytes(), b"", 0
    if kind == "space":
        return Space6(0, arg).to_bytes(), b"", 0
    if kind == "spacefm":
        return Space6(1, arg).to_bytes(), b"", 0
    if kind == "locate":
        return Locate10(block_address=arg).to_bytes(), b"", 0
    if kind == "read":
        return Read6(arg).to_bytes(), b"", arg
    if kind == "rewind":
        return Rewind().to_bytes(), b"", 0
    rp = ReadPosition.long() if arg == 6 else ReadPosition.short()
    return rp.to_bytes(), b"", rp.data_in_length


class TestPositionAgainstTheSimulator:
    """The tracked position agrees with the drive whenever it claims to be known."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(COMMAND, max_size=14))
    def test_random_sessions(self, commands: list[tuple[str, int | bytes]]) -> None:
        """After every command: known implies equal to the drive's block and file."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "TR0001L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            assert not hook.position.known
            send(dev, Rewind().to_bytes())
            assert hook.position == TrackedPosition(0, 0, True)
            for kind, arg in commands:
                cdb, data, n = _cdb(kind, arg)
                send(dev, cdb, data_out=data, data_in_len=n)
                truth = lib.position(0)
                assert truth is not None
                pos = hook.position
                if pos.known:
                    assert pos.block == truth.block, (kind, arg, pos, truth)
                    if pos.file is not None:
                        assert pos.file == truth.file, (kind, arg, pos, truth)
                if kind in ("rewind", "readpos"):
                    assert pos.known, (kind, arg)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.one_of(
                st.tuples(st.just("write"), st.integers(1, 3)),
                st.tuples(st.just("read"), st.integers(1, 4)),
                st.tuples(st.just("wfm"), st.integers(0, 1)),
                st.tuples(st.just("space"), st.integers(-3, 3)),
                st.tuples(st.just("locate"), st.integers(0, 6)),
                st.tuples(st.just("odd"), st.integers(1, 3)),
            ),
            max_size=12,
        )
    )
    def test_fixed_block_sessions(self, commands: list[tuple[str, int]]) -> None:
        """Fixed 2-byte blocks (and odd-sized records read in fixed mode: ILI)."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "TR0003L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            params = ModeParameters(block_descriptors=[BlockDescriptor(block_length=2)])
            sel, data = ModeSelect6.for_parameters(params)
            assert send(dev, sel.to_bytes(), data_out=data).ok
            for kind, n in commands:
                if kind == "write":
                    blocks = b"xy" * n
                    cdb, out, want = Write6.for_data(blocks, block_length=2).to_bytes(), blocks, 0
                elif kind == "read":
                    cdb, out, want = Read6(n, fixed=True, block_length=2).to_bytes(), b"", 2 * n
                elif kind == "odd":  # a 3-byte record, written in variable mode
                    lib.drive(0).block_size = 0
                    send(dev, Write6.for_data(b"abc").to_bytes(), data_out=b"abc")
                    lib.drive(0).block_size = 2
                    continue
                else:
                    cdb, out, want = _cdb(kind, n)
                send(dev, cdb, data_out=out, data_in_len=want)
                truth = lib.position(0)
                assert truth is not None
                pos = hook.position
                if pos.known:
                    assert pos.block == truth.block, (kind, n, pos, truth)
                    if pos.file is not None:
                        assert pos.file == truth.file, (kind, n, pos, truth)

    def test_execute_into_read_position(self) -> None:
        """A READ POSITION answered into the caller's buffer is tracked too."""
        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "TR0002L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            for rec in (b"a", b"b", b"c"):
                send(dev, Write6.for_data(rec).to_bytes(), data_out=rec)
            hook.state.forget_position()
            buf = bytearray(32)
            r = dev.execute_into(ReadPosition.long().to_bytes(), buf, timeout=5)
            assert r.ok
            assert hook.position == TrackedPosition(3, 0, True)


class TestSettings:
    """PREVENT, MODE SELECT and reservations as the device saw them complete."""

    def test_prevent_and_mode(self) -> None:
        """The last PREVENT and the block length and compression selected are kept."""
        st_ = DeviceState()
        good = Response()
        st_.observe(bytes((0x1E, 0, 0, 0, 1, 0)), b"", good, b"")
        assert st_.prevent
        params = ModeParameters(block_descriptors=[BlockDescriptor(block_length=1024)])
        cdb, data = ModeSelect6.for_parameters(params)
        st_.observe(cdb.to_bytes(), data, good, b"")
        assert st_.mode.block_length == 1024
        assert st_.mode_selects == [(cdb.to_bytes(), data)]
        st_.observe(bytes((0x1E, 0, 0, 0, 0, 0)), b"", good, b"")
        assert not st_.prevent

    def test_failed_commands_change_nothing(self) -> None:
        """A CHECK CONDITION or a path failure leaves the settings as they were."""
        st_ = DeviceState()
        bad = Response(status=2, sense=bytes((0x70, 0, 5, 0, 0, 0, 0, 10)) + bytes(10))
        st_.observe(bytes((0x1E, 0, 0, 0, 1, 0)), b"", bad, b"")
        lost = Response.failure(Outcome.LINK_LOST, "cut")
        st_.observe(bytes((0x1E, 0, 0, 0, 1, 0)), b"", lost, b"")
        assert not st_.prevent

    def test_reservation(self) -> None:
        """REGISTER, RESERVE, RELEASE and unregistering follow the key and type."""
        st_ = DeviceState()
        good = Response()

        def out(action: int, params: PrOutParameters, pr_type: int = 0) -> None:
            cdb, data = PersistentReserveOut.for_parameters(action, params, pr_type=pr_type)
            st_.observe(cdb.to_bytes(), data, good, b"")

        out(PrOutAction.REGISTER, PrOutParameters(service_action_reservation_key=0xAB))
        assert st_.reservation.key == 0xAB
        assert st_.reservation.pr_type is None
        out(PrOutAction.RESERVE, PrOutParameters(reservation_key=0xAB), pr_type=3)
        assert st_.reservation.pr_type == 3
        out(PrOutAction.RELEASE, PrOutParameters(reservation_key=0xAB), pr_type=3)
        assert st_.reservation.pr_type is None
        out(
            PrOutAction.REGISTER,
            PrOutParameters(reservation_key=0xAB, service_action_reservation_key=0),
        )
        assert st_.reservation.key is None


class TestArbitraryInput:
    """The observer takes anything a device or a caller can produce without raising."""

    @given(
        st.sampled_from([0xB8, 0xA5, 0xA6, 0x1E, 0x15, 0x55, 0x5F]),
        st.binary(max_size=15),
        st.binary(max_size=40),
        st.sampled_from([0, 2]),
        st.binary(max_size=300),
    )
    def test_changer_observe_never_raises(
        self, op: int, rest: bytes, data_out: bytes, status: int, data_in: bytes
    ) -> None:
        """Arbitrary answers to the commands the changer state follows: no exception."""
        s = ChangerState()
        cdb = bytes((op,)) + rest
        s.observe(cdb, data_out, Response(status=status, data=data_in), data_in)
        for a in range(4):
            assert s.barcode_at(a) is None or isinstance(s.barcode_at(a), str)

    @given(
        st.binary(max_size=20),
        st.binary(max_size=40),
        st.sampled_from([0, 2, 8, 0x18]),
        st.binary(max_size=30),
        st.binary(max_size=40),
    )
    def test_observe_never_raises(
        self, cdb: bytes, data_out: bytes, status: int, sense: bytes, data_in: bytes
    ) -> None:
        """Arbitrary CDB, status, sense and data: the position stays a valid value."""
        s = TapeState(TrackedPosition(5, 1, True))
        s.observe(cdb, data_out, Response(status=status, sense=sense, data=data_in), data_in)
        assert isinstance(s.position, TrackedPosition)
        assert s.position.block >= 0


class TestThreads:
    """Observers run in the callers' threads: no update is lost."""

    def test_concurrent_writes_all_counted(self) -> None:
        """Four threads of 500 good WRITEs, with READ POSITION-free reads of the value."""
        import threading  # noqa: PLC0415

        s = TapeState(TrackedPosition(0, 0, True))
        write = Write6.for_data(b"x").to_bytes()
        good = Response(transferred=1)
        seen: list[int] = []

        def work() -> None:
            for i in range(500):
                s.observe(write, b"x", good, b"")
                if i % 100 == 0:
                    seen.append(s.position.block)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.position == TrackedPosition(2000, 0, True)
        assert all(0 < b <= 2000 for b in seen)


class TestPositionKnown:
    """Which READ POSITION answers are positions."""

    def test_forms(self) -> None:
        """Flags that say unknown, and block 0 without BOP (tgtd's zeros), are not."""
        from tapepath.recovery.tracking import position_known  # noqa: PLC0415
        from tapepath.scsi.position import PositionExtended, PositionLong  # noqa: PLC0415

        assert position_known(PositionLong(bop=True))
        assert position_known(PositionLong(logical_object_number=7))
        assert not position_known(PositionLong())
        assert not position_known(PositionLong(logical_object_number=7, lonu=True))
        assert not position_known(PositionLong(logical_object_number=7, mpu=True))
        assert position_known(PositionShort(bop=True))
        assert position_known(PositionShort(first_location=3))
        assert not position_known(PositionShort())
        for flag in ("bycu", "lolu", "locu", "perr"):
            assert not position_known(PositionShort(first_location=3, **{flag: True}))
        assert position_known(PositionExtended(first_location=9))
        assert not position_known(PositionExtended(first_location=9, lolu=True))


class TestResetInTheStream:
    """A reset reported to the application's own command makes the position unknown."""

    def test_reset_forgets_then_read_position_restores(self) -> None:
        """29/00 on a WRITE: the drive rewound; the tracker stops claiming block 2."""
        from tapepath.testing.faults import DriveReset, FaultPlan, When  # noqa: PLC0415

        with library(slots=2, drives=1) as lib:
            lib.insert(lib.drive_address(0), "TR0004L8")
            hook = TapeRecovery()
            dev = tape_device(lib, hook)
            send(dev, Rewind().to_bytes())
            for d in (b"a", b"b"):
                send(dev, Write6.for_data(d).to_bytes(), data_out=d)
            assert hook.position == TrackedPosition(2, 0, True)
            lib.install(FaultPlan().add(DriveReset(device="drive0", trigger=When(lambda i: True))))
            r = dev.execute(Write6.for_data(b"c").to_bytes(), data_out=b"c", timeout=5)
            assert r.check_condition
            assert not hook.position.known
            rp = ReadPosition.long()
            assert send(dev, rp.to_bytes(), data_in_len=rp.data_in_length).ok
            assert hook.position == TrackedPosition(0, 0, True)
