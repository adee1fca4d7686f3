"""SimTransport: URL parsing, the transport contract, threads, and a random command
sequence over SCSI checked against a simple model of the tape."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tapepath
from tapepath.errors import TransportError
from tapepath.scsi.position import PositionLong, ReadPosition
from tapepath.scsi.tape import Locate10, Read6, Rewind, Space6, SpaceCode, Write6, WriteFilemarks6
from tapepath.testing import (
    FILEMARK,
    FaultPlan,
    ResponseLost,
    SimTransport,
    VirtualClock,
    VirtualLibrary,
    When,
)
from tapepath.testing.sim import parse_sim_url
from tapepath.transport import Outcome, Transport
from tests.testing.helpers import ready


class TestUrls:
    """parse_sim_url."""

    def test_parts(self) -> None:
        """Name, device, port and initiator come out of the URL."""
        assert parse_sim_url("sim://lib/drive1?port=3&initiator=iqn.x") == (
            "lib",
            "drive1",
            3,
            "iqn.x",
        )
        assert parse_sim_url("sim://lib/changer") == ("lib", "changer", 0, "sim-initiator")

    @pytest.mark.parametrize(
        "url",
        [
            "sim://lib",
            "sim:///changer",
            "sim://lib/a/b",
            "sim://lib/changer?port=x",
            "sim://lib/changer?port=-1",
            "sim://lib/changer?initiator=",
            "sg://lib/changer",
        ],
    )
    def test_malformed(self, url: str) -> None:
        """Malformed URLs raise ValueError."""
        with pytest.raises(ValueError, match=r"sim|port|initiator"):
            parse_sim_url(url)

    @given(st.text(max_size=60))
    def test_arbitrary_text(self, url: str) -> None:
        """Any text parses or raises ValueError, nothing else."""
        try:
            name, device, port, initiator = parse_sim_url("sim://" + url)
        except ValueError:
            return
        assert name
        assert device
        assert "/" not in device
        assert port >= 0
        assert initiator


class TestContract:
    """The transport contract as SimTransport keeps it."""

    def test_closed_transport_raises(self) -> None:
        """A closed transport raises TransportError; close is idempotent."""
        with VirtualLibrary("closing") as lib:
            t = tapepath.open_transport(lib.changer_urls()[0])
            t.close()
            t.close()
            with pytest.raises(TransportError, match="closed"):
                t.execute(bytes(6))

    def test_bad_arguments(self) -> None:
        """Caller mistakes are ValueError, as for every transport."""
        with VirtualLibrary("args") as lib:
            t = tapepath.open_transport(lib.changer_urls()[0])
            with pytest.raises(ValueError, match="one direction"):
                t.execute(bytes(6), data_out=b"x", data_in_len=4)
            with pytest.raises(ValueError, match="timeout"):
                t.execute(bytes(6), timeout=0)

    def test_execute_into(self) -> None:
        """execute_into fills the caller's buffer."""
        with VirtualLibrary("into") as lib:
            lib.insert(lib.drive_address(0), "IN0001L8")
            t = ready(lib.drive_urls(0)[0])
            t.execute(Write6.for_data(b"abcd").to_bytes(), data_out=b"abcd")
            t.execute(Rewind().to_bytes())
            buf = bytearray(4)
            r = t.execute_into(Read6(4).to_bytes(), buf)
            assert r.ok
            assert r.transferred == 4
            assert bytes(buf) == b"abcd"


class TestThreads:
    """One lock per library keeps concurrent paths consistent."""

    def test_concurrent_writers_and_pollers(self) -> None:
        """Writers on two drives and pollers on the changer: nothing lost or doubled."""
        with VirtualLibrary("threads") as lib:
            lib.insert(lib.drive_address(0), "TH0001L8")
            lib.insert(lib.drive_address(1), "TH0002L8")
            errors: list[object] = []

            def writer(drive: int, port: int) -> None:
                t = ready(lib.drive_urls(drive)[port])
                for i in range(200):
                    rec = f"{drive}-{port}-{i}".encode()
                    r = t.execute(Write6.for_data(rec).to_bytes(), data_out=rec)
                    if not r.ok:
                        errors.append(r)

            def poller() -> None:
                t = ready(lib.changer_urls()[0])
                for _ in range(300):
                    if not t.execute(bytes(6)).ok:
                        errors.append("tur")

            threads = [threading.Thread(target=writer, args=(d, p)) for d in (0, 1) for p in (0, 1)]
            threads += [threading.Thread(target=poller) for _ in range(2)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert errors == []
            for d in (0, 1):
                recs = lib.tape(d).records()  # type: ignore[union-attr]
                assert len(recs) == 400
                assert len(set(recs)) == 400


ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(min_size=1, max_size=6)),
        st.tuples(st.just("fm"), st.integers(1, 2)),
        st.tuples(st.just("rewind"), st.just(0)),
        st.tuples(st.just("locate"), st.integers(0, 12)),
        st.tuples(st.just("read"), st.just(0)),
        st.tuples(st.just("eod"), st.just(0)),
        st.tuples(st.just("lost_write"), st.binary(min_size=1, max_size=6)),
    ),
    max_size=25,
)


class TestScsiSequences:
    """Random commands over SCSI, with lost responses, against a list-and-index model."""

    @settings(max_examples=60)
    @given(ops)
    def test_tape_matches_model(self, seq: list[tuple[str, object]]) -> None:
        """Content and READ POSITION match the model after every command."""
        with VirtualLibrary("seq", clock=VirtualClock(), register=False) as lib:
            lib.insert(lib.drive_address(0), "SQ0001L8")
            plan = FaultPlan()
            lib.install(plan)
            t = SimTransport(lib, "drive0", 0)
            t.execute(bytes(6))
            model: list[bytes | None] = []
            pos = 0
            for op, arg in seq:
                if op in ("write", "lost_write"):
                    assert isinstance(arg, bytes)
                    if op == "lost_write":
                        plan.add(ResponseLost(trigger=When(lambda c: c.opcode == 0x0A)))
                    r = t.execute(Write6.for_data(arg).to_bytes(), data_out=arg)
                    if op == "lost_write":
                        assert r.outcome is Outcome.LINK_LOST
                        t.execute(bytes(6))  # the reconnected nexus reports 29/07
                    model[pos:] = [arg]
                    pos += 1
                elif op == "fm":
                    assert isinstance(arg, int)
                    t.execute(WriteFilemarks6(arg).to_bytes())
                    model[pos:] = [None] * arg
                    pos += arg
                elif op == "rewind":
                    t.execute(Rewind().to_bytes())
                    pos = 0
                elif op == "locate":
                    assert isinstance(arg, int)
                    t.execute(Locate10(block_address=arg).to_bytes())
                    pos = min(arg, len(model))
                elif op == "read":
                    r = t.execute(Read6(64).to_bytes(), data_in_len=64)
                    if pos < len(model):
                        expected = model[pos]
                        assert r.data == (expected or b"")
                        pos += 1
                else:
                    t.execute(Space6(SpaceCode.END_OF_DATA, 0).to_bytes())
                    pos = len(model)
                image = lib.tape(0)
                assert image is not None
                assert [None if o is FILEMARK else o for o in image.objects] == model
                assert block(t) == pos


def block(t: Transport) -> int:
    r = t.execute(ReadPosition.long().to_bytes(), data_in_len=32)
    assert r.ok, r
    return PositionLong.from_bytes(r.data).logical_object_number
