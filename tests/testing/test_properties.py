"""Property tests: arbitrary bytes never break the simulator; random robot sequences
keep every cartridge in exactly one element, matching a plain dict model."""

from __future__ import annotations

from collections import Counter

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tapepath.scsi.changer import ExchangeMedium, MoveMedium
from tapepath.scsi.element_status import ElementStatus, ReadElementStatus
from tapepath.testing import FaultPlan, RobotStop, VirtualClock, VirtualLibrary
from tapepath.testing.changer import ElementKind
from tapepath.transport import Outcome, Response
from tests.testing.helpers import ready

FUZZ_LIB = VirtualLibrary("fuzz", clock=VirtualClock(), register=False)
FUZZ_LIB.insert(FUZZ_LIB.drive_address(0), "FZ0001L8")


class TestArbitraryBytes:
    """Any CDB and data give a Response, never an exception from the simulator."""

    @given(
        device=st.sampled_from(["changer", "drive0", "drive1"]),
        cdb=st.binary(min_size=1, max_size=16),
        data=st.binary(max_size=64),
        alloc=st.integers(0, 600),
    )
    def test_any_command(self, device: str, cdb: bytes, data: bytes, alloc: int) -> None:
        """The answer is a response with sane lengths, whatever the bytes."""
        sess = FUZZ_LIB.open_session(device, 0, "fuzzer")
        try:
            if data:
                alloc = 0
            r = FUZZ_LIB.execute(sess, cdb, data, alloc, 5.0)
            assert isinstance(r, Response)
            assert r.outcome is Outcome.OK
            assert len(r.data) <= alloc
            assert r.status in (0, 2, 0x18)
            if r.status == 2:
                assert len(r.sense) == 18
        finally:
            FUZZ_LIB.close_session(sess)

    @given(
        opcode=st.sampled_from([0x12, 0xB8, 0x5E, 0xA3, 0x34, 0x1A, 0x5A, 0x4D, 0x44]),
        rest=st.binary(min_size=5, max_size=15),
    )
    def test_known_opcodes_with_random_fields(self, opcode: int, rest: bytes) -> None:
        """Known data-in commands with random fields answer GOOD or CHECK CONDITION."""
        sess = FUZZ_LIB.open_session("changer" if opcode in (0xB8,) else "drive0", 0, "f2")
        try:
            sess.nexus.unit_attentions.clear()
            r = FUZZ_LIB.execute(sess, bytes((opcode,)) + rest, b"", 512, 5.0)
            assert r.status in (0, 2)
        finally:
            FUZZ_LIB.close_session(sess)


class RobotMachine(RuleBasedStateMachine):
    """Random MOVE and EXCHANGE MEDIUM against a dict of address -> barcode."""

    def __init__(self) -> None:
        super().__init__()
        self.lib = VirtualLibrary(
            "prop",
            slots=6,
            drives=2,
            import_export=1,
            cartridges=4,
            clock=VirtualClock(),
            register=True,
        )
        self.t = ready(self.lib.changer_urls()[0])
        self.model: dict[int, str] = dict(self.lib.inventory())  # type: ignore[arg-type]
        self.transport = self.lib.layout.transport_start
        self.addresses = sorted(
            e.address
            for e in self.lib.changer.sorted_elements()
            if e.kind is not ElementKind.TRANSPORT
        )

    def teardown(self) -> None:
        self.lib.close()

    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        src = data.draw(st.sampled_from(self.addresses))
        dst = data.draw(st.sampled_from(self.addresses))
        r = self.t.execute(MoveMedium(0, src, dst).to_bytes())
        ok = (
            src in self.model
            and (dst not in self.model or dst == src)
            and self.transport not in self.model
        )
        assert r.ok == ok, (src, dst, r)
        if ok and src != dst:
            self.model[dst] = self.model.pop(src)

    @rule(data=st.data())
    def stopped_move(self, data: st.DataObject) -> None:
        """A robot stop mid-move leaves the cartridge in the transport element."""
        src = data.draw(st.sampled_from(self.addresses))
        dst = data.draw(st.sampled_from(self.addresses))
        self.lib.install(FaultPlan().add(RobotStop()))
        r = self.t.execute(MoveMedium(0, src, dst).to_bytes())
        self.lib.install(None)
        if src == dst and src in self.model and self.transport not in self.model:
            assert r.ok  # nothing moves, so nothing stops
            return
        ok = src in self.model and dst not in self.model and self.transport not in self.model
        if ok:
            assert r.sense[2] & 0x0F == 4
            self.model[self.transport] = self.model.pop(src)
        else:
            assert not r.ok

    @rule(data=st.data())
    def clear_transport(self, data: st.DataObject) -> None:
        """Whatever is left in the gripper can be put away."""
        dst = data.draw(st.sampled_from(self.addresses))
        r = self.t.execute(MoveMedium(0, self.transport, dst).to_bytes())
        ok = self.transport in self.model and dst not in self.model
        assert r.ok == ok
        if ok:
            self.model[dst] = self.model.pop(self.transport)

    @rule()
    def power_cycle(self) -> None:
        """A power cycle moves no cartridge."""
        self.lib.power_cycle()
        self.t.execute(bytes(6))  # 29/00 on the new nexus

    @rule(data=st.data())
    def exchange(self, data: st.DataObject) -> None:
        src, first, second = (data.draw(st.sampled_from(self.addresses)) for _ in range(3))
        r = self.t.execute(ExchangeMedium(0, src, first, second).to_bytes())
        ok = (
            src != first
            and self.transport not in self.model
            and src in self.model
            and first in self.model
            and (second not in self.model or second == src)
        )
        assert r.ok == ok, (src, first, second, r)
        if ok:
            a, b = self.model.pop(src), self.model.pop(first)
            self.model[first] = a
            self.model[second] = b

    @invariant()
    def one_place_each(self) -> None:
        inv = self.lib.inventory()
        assert inv == self.model
        assert all(n == 1 for n in Counter(inv.values()).values())

    @invariant()
    def element_status_agrees(self) -> None:
        cmd = ReadElementStatus(voltag=True)
        r = self.t.execute(cmd.to_bytes(), data_in_len=cmd.allocation_length)
        es = ElementStatus.from_bytes(r.data)
        seen = {d.address: d.barcode for d in es.descriptors() if d.full}
        assert seen == self.model


RobotMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # explain is slow
)
TestRobotSequences = RobotMachine.TestCase
