"""The fault campaign: seeded random scenarios of robot moves and tape I/O under faults.

Each scenario mixes MOVE MEDIUM loads and unloads, tape writes, filemarks, rewinds
and reads through the public API while faults land: :class:`~tapepath.testing.FaultPlan`
faults on the virtual library, and real ones on a private tgtd (connections deleted, a
portal removed and restored, tgtd killed and restarted, tgtd paused as a black hole).
After each scenario the cartridge locations and the tape contents are compared with a
fault-free :class:`Model`. Run it as::

    python -m tapepath.testing.campaign --seed 1 --scenarios 1000 [--tgtd|--no-tgtd] [--json]

It exits 1 when a must-be-0 counter (records lost or duplicated, calls over their
deadline, ...) is not 0.
"""

from tapepath.testing.campaign.model import Doubt, Model, TapeCheck, compare_tape
from tapepath.testing.campaign.report import Tally
from tapepath.testing.campaign.runner import run_campaign, scenario_seed, tgtd_available
from tapepath.testing.campaign.sim import run_sim_scenario
from tapepath.testing.campaign.workload import Rig, Workload

__all__ = [
    "Doubt",
    "Model",
    "Rig",
    "Tally",
    "TapeCheck",
    "Workload",
    "compare_tape",
    "run_campaign",
    "run_sim_scenario",
    "scenario_seed",
    "tgtd_available",
]
