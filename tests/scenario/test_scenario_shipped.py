"""Every shipped scenario loads, expands, round-trips and says where its numbers come from."""

from pathlib import Path

import pytest

from ciarsim.scenario import dump_scenario, expand, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


DEFAULT_LABELS = [
    "base", "sd", "lantern", "code_split", "gated-random", "gated-entropy", "gated-max_prob", "gated-topk_set", "gated-uhlm",
    "gated-interval", "ciar", "oracle", "device_only",
]  # fmt: skip
NUMBERS = ("uplink_mbps", "downlink_mbps", "rtt_ms", "jitter_ms", "loss_rate", "capacity_cv")
NAMES = {"ideal", "wifi", "5g", "4g", "4g-poor", "3g", "4g-crowded"}


def test_the_expected_set_is_shipped():
    assert {p.stem for p in SHIPPED} >= NAMES


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_loads_expands_and_round_trips(path):
    sc = load_scenario(path)
    points = expand(sc)
    assert points and all(p.scenario.sweep == {} for p in points)
    assert sc.name == path.stem
    assert sc.output_dir == str(ROOT / "reports" / sc.name)  # relative to the file: ../reports
    assert sc.models.checkpoints == str(ROOT / "models" / "shapes-256")
    assert sc.seed == 0 and sc.workload.images == 64
    assert [p.display for p in sc.policies] == DEFAULT_LABELS
    assert parse_scenario(dump_scenario(sc)) == sc


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_network_numbers_are_cited(path):
    text = path.read_text(encoding="utf-8")
    sc = load_scenario(path)
    if sc.network.capacity != "ideal":
        sources = ("Mahimahi", "Irish", "5Gophers", "EdgeCloudSim")
        assert any(s in text for s in sources), "cite a measurement source"
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(NUMBERS):
            assert "#" in line, f"uncited number: {stripped}"


def test_paper_accounting_costs_both_models_on_one_gpu():
    sc = load_scenario(next(p for p in SHIPPED if p.stem == "ideal"))
    assert sc.network.capacity == "ideal" and sc.network.rtt_ms == 0
    assert (sc.models.device.hardware, sc.models.device.runtime) == ("h100", "cudagraph")
    assert (sc.models.cloud.model, sc.models.cloud.hardware) == ("llamagen-xl", "h100")


@pytest.mark.parametrize("name", sorted(NAMES - {"ideal"}))
def test_phone_scenarios_use_the_phone_and_the_h100(name):
    sc = load_scenario(next(p for p in SHIPPED if p.stem == name))
    assert (sc.models.device.hardware, sc.models.device.runtime) == ("snapdragon-8-gen-3", "npu")
    assert (sc.models.cloud.model, sc.models.cloud.hardware, sc.models.cloud.runtime) == (
        "llamagen-xl", "h100", "cudagraph",
    )  # fmt: skip


def test_5g_says_its_uplink_is_an_assumption():
    text = next(p for p in SHIPPED if p.stem == "5g").read_text(encoding="utf-8")
    up = next(line for line in text.splitlines() if line.strip().startswith("uplink_mbps"))
    assert "ASSUMPTION" in up.upper()


def test_crowded_loads_the_gpu_with_poisson_arrivals():
    sc = load_scenario(next(p for p in SHIPPED if p.stem == "4g-crowded"))
    assert sc.workload.arrival.kind == "poisson" and sc.models.cloud.max_batch == 8
    rates = [p.scenario.workload.arrival.rate_per_s for p in expand(sc)]
    assert rates == sorted(rates) and len(rates) > 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_model_and_hardware_names_are_known(path):
    costs = pytest.importorskip("ciarsim.sim.costs")
    if not hasattr(costs, "validate_names"):
        pytest.skip("ciarsim.sim.costs.validate_names not written yet")
    costs.validate_names(load_scenario(path).models)
