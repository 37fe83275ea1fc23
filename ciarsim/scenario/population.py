"""A mixed population sharing one cloud: validation of the scenario's ``population`` groups
(``ciarsim.scenario.schema.GroupConfig``).

Each group has a ``name``, a ``share`` of the arrivals (Poisson: of the images; closed loop: of
the devices) and, optionally, its own ``device`` (a full device block: model, hardware, runtime,
...) and ``network`` (a full network block); what a group leaves out is the scenario's own
``models.device`` / ``network``. A group runs the policy under test on the scenario's one cloud,
unless its ``policy`` names another of the scenario's policies (checked by the schema), which its
phones then always run. The world draws each arrival's group from the shares with its own seeded generator
(``ciarsim.sim.population``); results carry a ``group`` column and the summary one row per
group beside the population's. Shares must be positive and sum to 1; a group's network cannot
replay capacity traces (``capacity: trace``: its paths would not be resolved).
"""

from __future__ import annotations

import math

SHARE_TOLERANCE = 1e-6


def check_population(groups: list) -> None:
    """Raise ValueError (one message: what is wrong, expected what) unless the groups' names are
    unique and their shares sum to 1 (within ``SHARE_TOLERANCE``)."""
    if not groups:
        return
    names = [g.name for g in groups]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"population: group names must be unique, {dupes} appear twice")
    total = math.fsum(g.share for g in groups)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        shares = ", ".join(f"{g.name}={g.share:g}" for g in groups)
        raise ValueError(f"population: the groups' shares must sum to 1, got {total:g} ({shares})")
    for i, g in enumerate(groups):
        if g.network is not None and g.network.capacity == "trace":
            raise ValueError(f"population[{i}] ({g.name}): network.capacity 'trace' is not "
                             f"supported in a group; use 'constant' or 'random'")  # fmt: skip
