"""``tapepath-mtx``: a drop-in for mtx 1.3.12 with multipath failover.

The same arguments (``-f DEVICE``, ``$CHANGER``/``$TAPE``, several commands in one
call), the same output byte for byte and the same exit status as mtx; ``-f`` also takes
a comma-separated list of path URLs or a configuration alias. See docs/mtx.md.
"""

from tapepath.mtx.main import main, run

__all__ = ["main", "run"]
