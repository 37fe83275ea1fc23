"""Sweep expansion: grid order, resolved points, stable keys, per-value errors, seeds."""

import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario import (
    dump_scenario, expand, load_scenario, parse_scenario, replication_seed, scenario_key,
)  # fmt: skip

BASE = """\
name: s
description: first
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10}
policies: [{name: base}, {name: ciar}]
"""
GRID = BASE + """\
sweep:
  network.rtt_ms: [20, 50, 80]
  policies.ciar.tau: [0.1, 0.3]
"""


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    return str(info.value)


def keys(text: str) -> list[str]:
    return [p.key for p in expand(parse_scenario(text))]


def test_no_sweep_is_one_point():
    (point,) = expand(parse_scenario(BASE))
    assert point.index == 0 and point.params == {} and point.label == "base"
    assert point.scenario == parse_scenario(BASE)


def test_grid_order_first_key_slowest():
    points = expand(parse_scenario(GRID))
    assert [p.index for p in points] == list(range(6))
    assert [tuple(p.params.values()) for p in points] == [
        (20, 0.1), (20, 0.3), (50, 0.1), (50, 0.3), (80, 0.1), (80, 0.3),
    ]  # fmt: skip
    assert list(points[0].params) == ["network.rtt_ms", "policies.ciar.tau"]


def test_points_are_resolved_and_unswept():
    p = expand(parse_scenario(GRID))[3]
    assert p.scenario.sweep == {}
    assert p.scenario.network.rtt_ms == 50.0 and p.scenario.policies[1].tau == 0.3
    assert p.scenario.network.uplink_mbps == 5 and p.scenario.policies[0].name == "base"
    assert p.label == "network.rtt_ms=50, policies.ciar.tau=0.3"


def test_keys_are_stable_short_hex_and_distinct():
    keys = [p.key for p in expand(parse_scenario(GRID))]
    assert keys == [p.key for p in expand(parse_scenario(GRID))]
    assert len(set(keys)) == 6 and all(len(k) == 16 and int(k, 16) >= 0 for k in keys)


def test_keys_are_pinned():
    """A changed key orphans stored results: bump KEY_VERSION on purpose, then update this."""
    assert expand(parse_scenario(BASE))[0].key == PINNED_BASE_KEY


PINNED_BASE_KEY = "b10fd21fe545e7be"  # network.tcp added, packet_header_bytes default 52


def test_later_network_fields_change_the_key_only_off_their_defaults():
    base = expand(parse_scenario(BASE))[0].key
    assert keys(BASE.replace("downlink_mbps: 10", "downlink_mbps: 10, tcp_window: slow-start"))[0] == base
    assert keys(BASE.replace("downlink_mbps: 10", "downlink_mbps: 10, tcp_window: aimd"))[0] != base


def test_keys_ignore_presentation_and_replications():
    other = GRID.replace("name: s", "name: t").replace("first", "second")
    other += "output_dir: elsewhere\nreplications: 5\n"
    assert keys(GRID) == keys(other)


def test_keys_change_with_any_value():
    base = expand(parse_scenario(BASE))[0].key
    assert keys(BASE + "seed: 1\n")[0] != base
    assert keys(BASE.replace("downlink_mbps: 10", "downlink_mbps: 11"))[0] != base
    swept = {p.params["network.rtt_ms"]: p.key for p in expand(parse_scenario(GRID))[::2]}
    fixed = parse_scenario(BASE.replace("downlink_mbps: 10", "downlink_mbps: 10, rtt_ms: 50"))
    assert swept[50] != scenario_key(fixed)  # tau differs: policies are part of the key
    assert swept[20] != swept[50]


def test_an_infinite_threshold_has_a_key_and_round_trips():
    sc = parse_scenario("policies: [{name: ciar, tau: .inf}]\n")
    assert parse_scenario(dump_scenario(sc)) == sc
    assert keys("policies: [{name: ciar, tau: .inf}]\n") != keys("policies: [{name: ciar}]\n")


def test_swept_point_equals_written_out_scenario():
    point = expand(parse_scenario(BASE + "sweep: {network.rtt_ms: [50]}\n"))[0]
    written = parse_scenario(BASE.replace("downlink_mbps: 10", "downlink_mbps: 10, rtt_ms: 50"))
    assert point.key == scenario_key(written)


def test_bad_swept_value_names_the_entry(write):
    path = write(BASE + "sweep:\n  network.rtt_ms: [20, -5]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == "s.yaml: sweep.network.rtt_ms[1]: must be >= 0, got -5 (line 6)"


def test_bad_policy_value_in_sweep():
    msg = error(BASE + "sweep: {policies.ciar.tau: [-1]}\n")
    assert "s.yaml: sweep.policies.ciar.tau[0]: must be >= 0, got -1" in msg


def test_unknown_sweep_path_suggests():
    msg = error(BASE + "sweep: {network.rtt_mss: [1]}\n")
    assert "sweep.network.rtt_mss: unknown field 'rtt_mss' in network (did you mean 'rtt_ms'" in msg
    msg = error(BASE + "sweep: {netwrk.rtt_ms: [1]}\n")
    assert "sweep.netwrk.rtt_ms: unknown field 'netwrk' (did you mean 'network'?)" in msg
    assert "no policy labelled 'ciar2'" in error(BASE + "sweep: {policies.ciar2.tau: [1]}\n")


def test_sweep_path_must_be_a_value():
    msg = error(BASE + "sweep: {network: [1]}\n")
    assert "sweep.network: names a section, not a value" in msg
    msg = error(BASE + "sweep: {network.rtt_ms.x: [1]}\n")
    assert "sweep.network.rtt_ms.x: network.rtt_ms is a value" in msg


def test_bad_combination_names_the_point():
    msg = error("name: s\nsweep:\n  network.capacity: [ideal, constant]\n")
    assert "sweep point 1 (network.capacity=constant): network: uplink_mbps is required" in msg


def test_empty_and_repeated_values():
    assert "sweep.network.rtt_ms: lists no values" in error(BASE + "sweep: {network.rtt_ms: []}\n")
    msg = error(BASE + "sweep: {network.rtt_ms: [20, 20.0]}\n")
    assert "point 1 (network.rtt_ms=20.0) is the same run as point 0 (network.rtt_ms=20)" in msg


def test_sweep_of_a_poisson_rate():
    text = BASE + "workload: {arrival: {kind: poisson, rate_per_s: 1}}\n"
    text += "sweep: {workload.arrival.rate_per_s: [1, 2.5]}\n"
    rates = [p.scenario.workload.arrival.rate_per_s for p in expand(parse_scenario(text))]
    assert rates == [1.0, 2.5]


def test_replication_seeds_are_stable_distinct_and_bounded():
    seeds = [replication_seed(s, r) for s in range(5) for r in range(50)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= x < 2**63 for x in seeds)
    assert replication_seed(0, 0) == replication_seed(0, 0)
    assert replication_seed(0, 1) != replication_seed(1, 0)
    assert replication_seed(0, 0) == PINNED_SEED
    with pytest.raises(ValueError):
        replication_seed(-1, 0)


PINNED_SEED = 7011923036508619336


ZIPPED = """
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10}
policies: [{name: ciar}, {name: gated, signal: entropy}]
sweep: {network.rtt_ms: [10, 20]}
zip:
  - {policies.ciar.tau: [0.1, 0.2, 0.3], policies.gated-entropy.tau: [1.0, 2.0, 3.0]}
"""


def test_zip_groups_move_together_and_combine_with_the_grid():
    points = expand(parse_scenario(ZIPPED))
    assert len(points) == 2 * 3
    got = [(p.params["network.rtt_ms"], p.params["policies.ciar.tau"],
            p.params["policies.gated-entropy.tau"]) for p in points]
    assert got[:3] == [(10, 0.1, 1.0), (10, 0.2, 2.0), (10, 0.3, 3.0)]
    assert points[4].scenario.policies[1].tau == 2.0 and points[4].scenario.network.rtt_ms == 20


def test_zip_lists_must_have_equal_lengths():
    import pytest

    from ciarsim.errors import ScenarioError

    with pytest.raises(ScenarioError, match="equal lengths"):
        parse_scenario(ZIPPED.replace("[1.0, 2.0, 3.0]", "[1.0, 2.0]"))
