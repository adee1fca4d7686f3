"""Run a seeded campaign: scenarios on the virtual library and, when asked, on tgtd."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from tapepath.testing.campaign.report import Tally
from tapepath.testing.campaign.sim import run_sim_scenario

__all__ = ["TGTD_SHARE", "run_campaign", "scenario_seed", "tgtd_available"]

TGTD_SHARE = 5
"""One scenario in this many runs on tgtd (when tgtd is used)."""


def scenario_seed(seed: int, index: int) -> int:
    """The seed of scenario ``index`` of a campaign seeded with ``seed``."""
    return (seed << 20) + index


def tgtd_available() -> bool:
    """True when tgtd, tgtadm and tgtimg are installed."""
    found = [shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin") for t in _TOOLS]
    return all(found)


_TOOLS = ("tgtd", "tgtadm", "tgtimg")


def run_campaign(
    seed: int,
    scenarios: int,
    *,
    tgtd: bool | None = None,
    progress: Callable[[int, Tally], None] | None = None,
) -> Tally:
    """Run ``scenarios`` seeded scenarios and return the summed counts.

    Args:
        seed: the campaign seed: the same seed gives the same scenarios (on tgtd,
            the moment a fault lands within a call still depends on timing).
        scenarios: how many scenarios.
        tgtd: run every :data:`TGTD_SHARE`-th scenario on a private tgtd (True), none
            (False), or only when tgtd is installed (None).
        progress: called after each scenario with its index and the running tally.

    Returns:
        The tally; :attr:`Tally.ok` says whether every must-be-0 counter is 0.
    """
    if scenarios < 0:
        raise ValueError("scenarios must be >= 0")
    use_tgtd = tgtd_available() if tgtd is None else tgtd
    tally = Tally()
    if not use_tgtd:
        for k in range(scenarios):
            run_sim_scenario(scenario_seed(seed, k), tally)
            if progress is not None:
                progress(k, tally)
        return tally
    from tapepath.testing.campaign.tgtd import TgtdCampaign  # noqa: PLC0415

    with TgtdCampaign() as target:
        for k in range(scenarios):
            s = scenario_seed(seed, k)
            if k % TGTD_SHARE == TGTD_SHARE - 1:
                target.run_scenario(s, tally)
            else:
                run_sim_scenario(s, tally)
            if progress is not None:
                progress(k, tally)
    return tally
