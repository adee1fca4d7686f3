"""sockio.sendall: every byte of every segment goes, in order, whatever the socket takes."""

from __future__ import annotations

import array

from hypothesis import given
from hypothesis import strategies as st

from tapepath.iscsi.sockio import sendall


class ShortSocket:
    """A socket that takes at most ``limits[i]`` bytes on its i-th call (then all)."""

    def __init__(self, limits: list[int]) -> None:
        self.limits = list(limits)
        self.wire = bytearray()
        self.calls: list[str] = []

    def _cap(self, n: int) -> int:
        return min(n, self.limits.pop(0)) if self.limits else n

    def send(self, data: bytes) -> int:
        self.calls.append("send")
        n = self._cap(len(data))
        self.wire += data[:n]
        return n

    def sendmsg(self, buffers: list[memoryview]) -> int:
        self.calls.append("sendmsg")
        assert len(buffers) <= 1000  # IOV_MAX on Linux is 1024
        raw = [bytes(memoryview(b).cast("B")) for b in buffers]  # bytes, whatever the format
        budget = self._cap(sum(len(b) for b in raw))
        taken = 0
        for b in raw:
            part = b[: budget - taken]
            self.wire += part
            taken += len(part)
            if taken == budget:
                break
        return taken


class TestSendall:
    """Gathered sends and the one-segment shortcut."""

    def test_one_bytes_segment_is_one_send(self) -> None:
        """A lone bytes segment goes with a single send()."""
        sock = ShortSocket([])
        sendall(sock, [b"x" * 48])  # type: ignore[arg-type]
        assert sock.calls == ["send"]
        assert sock.wire == b"x" * 48

    def test_short_send_finishes_with_sendmsg(self) -> None:
        """What a short send() leaves goes after it."""
        sock = ShortSocket([10, 7])
        data = bytes(range(48))
        sendall(sock, [data])  # type: ignore[arg-type]
        assert sock.calls[0] == "send"
        assert sock.wire == data

    @given(
        st.lists(st.binary(max_size=64), max_size=6),
        st.lists(st.integers(min_value=1, max_value=40), max_size=20),
        st.booleans(),
    )
    def test_everything_arrives_in_order(
        self, segments: list[bytes], limits: list[int], views: bool
    ) -> None:
        """Any segments, any short writes: the wire carries their concatenation."""
        sock = ShortSocket(limits)
        segs: list[bytes | memoryview] = [memoryview(s) if views else s for s in segments]
        sendall(sock, segs)  # type: ignore[arg-type]
        assert sock.wire == b"".join(segments)

    def test_data_out_burst_is_one_sendmsg(self) -> None:
        """Headers and views of the caller's data, all taken: a single sendmsg."""
        data = memoryview(bytes(range(256)) * 64)
        segs: list[bytes | memoryview] = []
        for off in range(0, len(data), 512):
            segs += [bytes([off & 0xFF]) * 48, data[off : off + 512]]
        sock = ShortSocket([])
        sendall(sock, segs)  # type: ignore[arg-type]
        assert sock.calls == ["sendmsg"]
        assert sock.wire == b"".join(bytes(x) for x in segs)

    @given(st.lists(st.integers(min_value=1, max_value=5000), max_size=8))
    def test_more_segments_than_iov_max(self, limits: list[int]) -> None:
        """2,500 segments go in batches the kernel accepts, in order, whatever is short."""
        segs = [bytes([i & 0xFF]) * (1 + i % 3) for i in range(2500)]
        sock = ShortSocket(limits)
        sendall(sock, segs)  # type: ignore[arg-type]
        assert sock.wire == b"".join(segs)

    @given(st.lists(st.integers(min_value=1, max_value=13), max_size=10))
    def test_multibyte_items_counted_in_bytes(self, limits: list[int]) -> None:
        """Buffers whose items are wider than a byte are sent whole, never cut short."""
        ints = array.array("i", range(10))
        words = memoryview(bytes(range(40))).cast("I")
        segs = [b"head", ints, words, bytearray(b"tail"), b""]
        sock = ShortSocket(limits)
        sendall(sock, segs)  # type: ignore[arg-type]
        assert sock.wire == b"head" + ints.tobytes() + bytes(range(40)) + b"tail"
