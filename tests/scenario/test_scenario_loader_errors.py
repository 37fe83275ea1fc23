"""Bad scenario files give one short line per problem: file, field path, expectation, value."""

import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario import load_scenario, parse_scenario

CONSTANT = "network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10}\n"


def test_out_of_range_names_file_field_and_value(error_of):
    msg = error_of("network:\n  capacity: constant\n  uplink_mbps: -3\n  downlink_mbps: 5\n")
    assert "bad.yaml: network.uplink_mbps: must be >= 0.001, got -3" in msg
    assert "(line 3)" in msg
    assert "Traceback" not in msg


def test_unknown_key_suggests_the_close_one(error_of):
    msg = error_of(CONSTANT.replace("uplink_mbps: 5", "uplnk_mbps: 5, uplink_mbps: 5"))
    assert "bad.yaml: network.uplnk_mbps: unknown key (did you mean 'uplink_mbps'?)" in msg


def test_unknown_top_level_section(error_of):
    assert "netwrok: unknown key (did you mean 'network'?)" in error_of("netwrok: {}\n")


def test_all_problems_reported_one_per_line(error_of):
    msg = error_of(
        "seed: -1\nworkload: {images: 0}\n"
        "network: {capacity: constant, uplink_mbps: 0, downlink_mbps: 5, jitter_dist: gauss}\n"
    )
    lines = msg.splitlines()
    assert len(lines) == 4 and all(line.startswith("bad.yaml: ") for line in lines)
    assert "seed: must be >= 0, got -1" in lines[0]
    assert "workload.images: must be >= 1, got 0" in msg
    expected = "network.jitter_dist: must be one of exponential, uniform, halfnormal, got 'gauss'"
    assert expected in msg


def test_many_problems_are_capped(error_of):
    body = "".join(f"  x{i}: 1\n" for i in range(30))
    msg = error_of("network:\n" + body)
    assert len(msg.splitlines()) == 21 and "... and 10 more problems" in msg


def test_strings_are_not_numbers(error_of):
    msg = error_of('network: {capacity: constant, uplink_mbps: "5", downlink_mbps: 5}\n')
    assert "network.uplink_mbps: must be a number, got '5' (remove the quotes)" in msg
    assert "workload.images: must be an integer, got 64.5" in error_of("workload: {images: 64.5}\n")


def test_yaml_1_2_exponents_are_numbers(write):
    text = "network: {capacity: constant, uplink_mbps: 1e1, downlink_mbps: 2.5E+1}\n"
    sc = load_scenario(write(text))
    assert (sc.network.uplink_mbps, sc.network.downlink_mbps) == (10.0, 25.0)


def test_infinite_numbers_are_refused(error_of):
    msg = error_of("network: {rtt_ms: .inf}\n")
    assert "network.rtt_ms: must be a finite number, got inf" in msg


def test_cross_field_rule_names_the_section(error_of):
    msg = error_of("workload:\n  arrival: {kind: poisson}\n")
    expected = "workload.arrival: rate_per_s is required when kind is 'poisson' (line 2)"
    assert f"bad.yaml: {expected}" in msg


def test_unknown_policy_lists_the_known_ones(error_of):
    msg = error_of("policies:\n  - {name: base}\n  - {name: ciarr}\n")
    assert "policies[1]: unknown policy 'ciarr' (did you mean 'ciar'?)" in msg
    assert ("known policies: base, device_only, sd, lantern, code_split, gated, ciar, ciar_pipelined, "
            "ciar_batched, cloud_burst, oracle, plugin, adaptive") in msg
    assert "(line 3)" in msg


def test_policy_fields_are_addressed_with_index_and_label(error_of):
    msg = error_of("policies:\n  - {name: base}\n  - {name: ciar, tau: -0.2, rh0: 1}\n")
    assert "policies[1] (ciar).tau: must be >= 0, got -0.2" in msg
    assert "policies[1] (ciar).rh0: unknown key (did you mean 'rho'?)" in msg


def test_policy_problems(error_of):
    assert "policies[0]: needs a 'name'" in error_of("policies:\n  - {tau: 1}\n")
    msg = error_of("policies: [ciar]\n")
    assert "policies[0]: must be a mapping like {name: ciar}, got 'ciar'" in msg
    assert "policies: must have at least 1 item" in error_of("policies: []\n")
    msg = error_of("policies: [{name: sd}, {name: sd, gamma: 8}]\n")
    assert "policies: policy labels must be unique" in msg


def test_yaml_syntax_error_gives_line_and_column(error_of):
    msg = error_of("name: x\nnetwork:\n  rtt_ms: 1\n bad: [\n")
    assert msg.startswith("bad.yaml: line 4, column 2: ")
    assert len(msg.splitlines()) == 1


def test_tab_indentation_is_explained(error_of):
    assert "spaces, not tabs" in error_of("network:\n\trtt_ms: 1\n")


def test_duplicate_keys_are_refused(error_of):
    msg = error_of("network:\n  rtt_ms: 20\n  jitter_ms: 1\n  rtt_ms: 80\n")
    assert "bad.yaml: line 4, column 3: duplicate key 'rtt_ms' (first at line 2)" in msg


def test_duplicate_keys_in_a_flow_mapping(error_of):
    assert "duplicate key 'name'" in error_of("policies: [{name: sd, name: ciar}]\n")


def test_merge_keys_still_work(write):
    text = "x: &net {capacity: constant, uplink_mbps: 5, downlink_mbps: 5}\n"
    with pytest.raises(ScenarioError, match="x: unknown key"):
        load_scenario(write(text + "network:\n  <<: *net\n  rtt_ms: 9\n"))


def test_missing_file_suggests_a_neighbour(write):
    write("name: x\n", "4g.yaml")
    with pytest.raises(ScenarioError) as info:
        load_scenario("4h.yaml")
    assert str(info.value) == "4h.yaml: file not found (did you mean 4g.yaml?)"


def test_directory_empty_file_and_non_mapping(write, tmp_path):
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)
    with pytest.raises(ScenarioError, match="empty.yaml: the file is empty"):
        load_scenario(write("# only a comment\n", "empty.yaml"))
    with pytest.raises(ScenarioError, match="top level must be a mapping .* got a list"):
        load_scenario(write("- a\n- b\n", "list.yaml"))


def test_not_utf8(write, tmp_path):
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_scenario("latin.yaml")


def test_wrong_type_of_string_field_suggests_quoting(error_of):
    assert "name: must be a string, got 3 (quote it: '3')" in error_of("name: 3\n")


def test_parse_scenario_names_its_source():
    with pytest.raises(ScenarioError, match="^inline: seed: must be >= 0"):
        parse_scenario("seed: -2\n", "inline")
    assert parse_scenario(CONSTANT).network.uplink_mbps == 5
