"""Mixed populations: per-group results on one shared cloud, a one-group population equals the
plain scenario, shares validated."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from ciarsim.cli import app
from ciarsim.runner.run import run_scenario
from ciarsim.scenario import parse_scenario
from tests.runner.test_run import hand_decoder

PLAIN = """
name: plain
seed: 5
workload: {images: 40, token_grid: 4, arrival: {kind: poisson, rate_per_s: 20}}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40, jitter_ms: 2, radio: lte}
policies:
  - {name: base}
  - {name: device_only}
"""

MIXED = PLAIN + """
population:
  - {name: phones-lte, share: 0.6}
  - name: boards-wifi
    share: 0.4
    device: {hardware: jetson-orin-nano, runtime: gpu}
    network: {capacity: constant, uplink_mbps: 50, downlink_mbps: 100, rtt_ms: 5, radio: wifi}
"""


def _run(text: str, tmp_path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = run_scenario(parse_scenario(text), tmp_path / name, cache_dir=tmp_path / "cache",
                       decoder=hand_decoder)  # fmt: skip
    return pd.read_parquet(tmp_path / name / "results.parquet"), out.summary


def test_population_gives_per_group_results(tmp_path):
    df, summary = _run(MIXED, tmp_path, "mixed")
    assert set(df["group"]) == {"phones-lte", "boards-wifi"}
    base = df[df.policy == "base"].groupby("group")
    # the wifi group's link is faster (RTT 5 ms vs 40 ms) and its radio cheaper than LTE's tail
    assert base["rtt_wait_ms"].mean()["boards-wifi"] < base["rtt_wait_ms"].mean()["phones-lte"]
    assert base["energy_radio_j"].mean()["boards-wifi"] < base["energy_radio_j"].mean()["phones-lte"]
    share = (df[df.policy == "base"]["group"] == "phones-lte").mean()
    assert 0.4 < share < 0.8  # 40 draws at 0.6
    rows = summary[summary.policy == "base"]
    assert list(rows["group"]) == ["all", "phones-lte", "boards-wifi"]
    assert rows["images"].tolist() == [40, *base.size()[["phones-lte", "boards-wifi"]].tolist()]
    assert (rows["speedup_vs_base"] == 1.0).all()  # base vs base, within each group


def test_one_group_of_everyone_equals_the_plain_scenario(tmp_path):
    plain, plain_summary = _run(PLAIN, tmp_path, "plain")
    one, one_summary = _run(PLAIN + "population: [{name: all-phones, share: 1}]\n", tmp_path, "one")
    assert (one["group"] == "all-phones").all() and (one["group_policy"] == one["policy"]).all()
    # the point key hashes the scenario text; everything else is the same
    pd.testing.assert_frame_equal(one.drop(columns=["group", "group_policy", "point"]), plain.drop(columns="point"))
    overall = one_summary[one_summary.group == "all"].drop(columns=["group", "point"])
    pd.testing.assert_frame_equal(overall.reset_index(drop=True), plain_summary.drop(columns="point"))


def test_shares_must_sum_to_one(tmp_path):
    bad = PLAIN + "population: [{name: a, share: 0.5}, {name: b, share: 0.3}]\n"
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    result = CliRunner().invoke(app, ["scenarios", "validate", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "shares must sum to 1, got 0.8" in result.output


def test_group_names_unique():
    with pytest.raises(Exception, match="group names must be unique"):
        parse_scenario(PLAIN + "population: [{name: a, share: 0.5}, {name: a, share: 0.5}]\n")


PINNED = PLAIN + """
population:
  - {name: phones-lte, share: 0.6}
  - {name: legacy, share: 0.4, policy: base}
"""


def test_a_group_pinned_to_a_policy_replays_that_policy_on_the_shared_cloud(tmp_path):
    df, _ = _run(PINNED, tmp_path, "pinned")
    plain, _ = _run(PLAIN, tmp_path, "plain")
    part = df[df.policy == "device_only"]  # the policy under test; the legacy group runs base
    legacy, rest = part[part.group == "legacy"], part[part.group == "phones-lte"]
    assert len(legacy) and len(rest)
    assert (legacy.group_policy == "base").all() and (rest.group_policy == "device_only").all()
    # what each image did is its own policy's: base makes one exchange, device_only none
    assert (legacy.cloud_calls == 1).all() and (rest.cloud_calls == 0).all()
    plain_passes = plain.groupby("policy")["cloud_passes"].first()
    assert (legacy.cloud_passes == plain_passes["base"]).all()
    assert (rest.cloud_passes == plain_passes["device_only"]).all()


def test_a_group_policy_must_name_one_of_the_scenarios_policies():
    with pytest.raises(Exception, match="policy 'ciar' is not the label"):
        parse_scenario(PLAIN + "population: [{name: a, share: 1, policy: ciar}]\n")
