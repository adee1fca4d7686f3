"""Same-path retries under the recovery layer's hooks: their ``safe`` sets decide."""

from __future__ import annotations

import contextlib

from tapepath.errors import TapepathError
from tapepath.multipath import PathState
from tapepath.recovery.changer import ChangerRecovery
from tapepath.recovery.driver import REPEATABLE, RecoveryDriver
from tapepath.recovery.tape import TapeRecovery
from tests.multipath.test_retry_same_path import (
    DID_SOFT_ERROR,
    READ_POSITION,
    Port,
    device,
    sg_failure,
)

WRITE_FILEMARKS = bytes((0x10, 0, 0, 0, 1, 0))


class TestRecoveryHooksDeclareSafe:
    """RecoveryDriver and ChangerRecovery declare what is safe to run twice."""

    def test_sets(self) -> None:
        """The driver's set is REPEATABLE; the changer's adds its own idempotent commands."""
        assert RecoveryDriver.safe == REPEATABLE
        assert 0x34 in REPEATABLE  # READ POSITION
        assert 0x0A not in REPEATABLE  # WRITE(6)
        assert ChangerRecovery.safe > REPEATABLE
        assert 0x07 in ChangerRecovery.safe  # INITIALIZE ELEMENT STATUS
        assert 0xA5 not in ChangerRecovery.safe  # MOVE MEDIUM

    def test_query_retried_on_same_path(self) -> None:
        """Tape hook: a READ POSITION that may have run meets DID_SOFT_ERROR: same path."""
        a, b = Port("a", [sg_failure(DID_SOFT_ERROR)]), Port("b")
        dev = device([a, b], recovery=TapeRecovery())
        assert dev.execute(READ_POSITION, data_in_len=20).ok
        assert (a.sent, b.sent) == (2, 0)
        assert dev.paths[0].state is PathState.ACTIVE

    def test_write_filemarks_goes_to_recovery(self) -> None:
        """A WRITE FILEMARKS that may have run is not retried on the same path."""
        a, b = Port("a", [sg_failure(DID_SOFT_ERROR)]), Port("b")
        dev = device([a, b], recovery=TapeRecovery())
        with contextlib.suppress(TapepathError):  # recovery may find it in doubt
            dev.execute(WRITE_FILEMARKS)
        assert a.sent == 1
        assert dev.paths[0].state is PathState.FAILED
