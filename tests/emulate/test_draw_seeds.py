"""Each emulated point draws its own jitter and losses (``ciarsim.emulate.api.draw_seed``): a seed
shared by every point of a grid made the same packets lost at every point, so the grid's errors
were a handful of samples, not one per point."""

from __future__ import annotations

import pytest

from ciarsim.emulate.api import draw_seed, relay_spec
from ciarsim.scenario.loader import parse_scenario
from ciarsim.scenario.sweep import expand

SCENARIO = """
name: seeds
seed: 3
workload: {images: 2, token_grid: 4}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 60, loss_rate: 0.01}
policies:
  - {name: base}
sweep:
  network.rtt_ms: [60, 120]
"""


def test_draw_seeds_are_stable_and_distinct_per_point_and_replication():
    seeds = {draw_seed(3, f"p{i}", r) for i in range(20) for r in range(5)}
    assert len(seeds) == 100 and all(0 <= s < 2**63 for s in seeds)
    assert draw_seed(3, "p0", 0) == draw_seed(3, "p0", 0)
    assert draw_seed(3, "p0", 0) != draw_seed(4, "p0", 0)
    with pytest.raises(ValueError):
        draw_seed(-1, "p0", 0)


def test_the_relay_of_each_point_gets_its_own_seed():
    points = expand(parse_scenario(SCENARIO))
    specs = [relay_spec(p.scenario, 0, draw_seed(p.scenario.seed, p.key, 0)) for p in points]
    assert specs[0]["seed"] != specs[1]["seed"]
    assert specs[0]["uplink"]["loss_rate"] == specs[1]["uplink"]["loss_rate"] == 0.01
