"""``--set dotted.path=value`` overrides: values as YAML, sections created, policies by label."""

import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario import load_scenario

BASE = """\
name: t
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 20}
policies:
  - {name: base}
  - {name: gated, signal: entropy}
  - {name: gated, signal: random}
  - {name: ciar, tau: 0.3}
  - {name: sd, label: sd-8, gamma: 8}
"""


def test_scalar_values_parse_as_yaml(write):
    overrides = ["network.rtt_ms=80", "network.jitter_dist=uniform", "name=other"]
    sc = load_scenario(write(BASE), overrides)
    assert sc.network.rtt_ms == 80.0 and sc.network.jitter_dist == "uniform" and sc.name == "other"


def test_later_overrides_win_and_empty_means_null(write):
    sc = load_scenario(write(BASE + "output_dir: out\n"), ["seed=1", "seed=2", "output_dir="])
    assert sc.seed == 2 and sc.output_dir is None


def test_missing_section_is_created(write):
    overrides = ["workload.arrival.devices=4", "models.cloud.overrides.eta_bw=0.5"]
    sc = load_scenario(write(BASE), overrides)
    assert sc.workload.arrival.devices == 4 and sc.models.cloud.overrides.eta_bw == 0.5


def test_missing_section_starts_from_its_default(write):
    sc = load_scenario(write("name: t\n"), ["network.message_header_bytes=80"])
    assert sc.network.capacity == "ideal" and sc.network.message_header_bytes == 80


def test_policy_by_label_name_and_index(write):
    path = write(BASE)
    sc = load_scenario(path, ["policies.ciar.tau=0.2", "policies.gated-random.tau=0.5",
                              "policies.sd-8.gamma=2", "policies.0.top_k=10"])  # fmt: skip
    by = {p.display: p for p in sc.policies}
    assert by["ciar"].tau == 0.2 and by["gated-random"].tau == 0.5
    assert by["gated-entropy"].tau == 0.3
    assert by["sd-8"].gamma == 2 and by["base"].top_k == 10
    assert load_scenario(path, ["policies.sd.gamma=3"]).policies[4].gamma == 3  # name, unique


def test_policy_addressing_errors(write):
    path = write(BASE)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["policies.ciarr.tau=1"])
    assert str(info.value) == (
        "s.yaml: --set policies.ciarr.tau=1: no policy labelled 'ciarr' (did you mean 'ciar'?); "
        "policies here: base, gated-entropy, gated-random, ciar, sd-8"
    )
    with pytest.raises(ScenarioError, match="'gated' matches several policies"):
        load_scenario(path, ["policies.gated.tau=1"])


def test_bad_override_value_is_blamed_on_the_option(write):
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(BASE), ["policies.ciar.tau=-1", "network.uplnk_mbps=3"])
    first, second = str(info.value).splitlines()
    assert first == (
        "s.yaml: policies[3] (ciar).tau: must be >= 0, got -1 (from --set policies.ciar.tau=-1)"
    )
    assert second.endswith(
        "network.uplnk_mbps: unknown key (did you mean 'uplink_mbps'?) "
        "(from --set network.uplnk_mbps=3)"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("network", "expected dotted.path=value"),
        ("network..rtt_ms=1", "is not a dotted field path"),
        ("network.rtt_ms.x=1", "network.rtt_ms is a value (20), not a section"),
        ("network.rtt_ms=[1", "the value is not valid YAML (line 1, column 3"),
    ],
)
def test_malformed_overrides(write, override, expected):
    with pytest.raises(ScenarioError, match="--set " + __import__("re").escape(override)) as info:
        load_scenario(write(BASE), [override])
    assert expected in str(info.value)


def test_sweep_entries(write):
    path = write(BASE)
    sc = load_scenario(path, ["sweep.network.rtt_ms=[20,50]", "sweep.policies.ciar.tau=[0.1, 0.3]"])
    assert sc.sweep == {"network.rtt_ms": [20, 50], "policies.ciar.tau": [0.1, 0.3]}
    assert load_scenario(path, ["sweep.network.rtt_ms=[20,50]", "sweep={}"]).sweep == {}


def test_bad_sweep_override(write):
    with pytest.raises(ScenarioError, match=r"sweep\.network\.rtt_ms\[1\]: must be >= 0, got -50"):
        load_scenario(write(BASE), ["sweep.network.rtt_ms=[20,-50]"])
