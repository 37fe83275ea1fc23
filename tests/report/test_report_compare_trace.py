"""compare() of two results folders and the Perfetto trace export."""

import json

import pandas as pd
import pytest

from ciarsim.errors import CiarsimError
from ciarsim.report import export_trace_events
from ciarsim.report.compare import compare, resolve_param

from conftest import SCENARIO, make_results  # noqa: E402  (tests/report/conftest.py)


def test_compare_matches_points_on_swept_and_fixed_parameters(results_dir, tmp_path):
    # B sweeps RTT only, at A's second uplink value and with more jitter
    text = (SCENARIO.replace("  network.uplink_mbps: [2, 20]\n", "")
            .replace("uplink_mbps: 5", "uplink_mbps: 20").replace("jitter_ms: 3", "jitter_ms: 30")
            .replace("name: tiny-report", "name: tiny-b"))  # fmt: skip
    b = make_results(tmp_path / "b", tmp_path / "cache", text)
    md = compare(results_dir, b, tmp_path / "cmp", formats=("png",))
    assert md == tmp_path / "cmp" / "compare.md"
    diff = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert len(diff) == 4 and set(diff["network.uplink_mbps"]) == {20.0}  # 2 RTTs x 2 policies
    assert (diff["latency_diff_ms"] > 0).all()  # more jitter is slower
    assert (tmp_path / "cmp" / "figures" / "compare_latency_vs_network_rtt_ms.png").is_file()
    text = md.read_text()
    assert "A: tiny-report" in text and "B: tiny-b" in text and "B - A" in text
    assert r"\toprule" in (tmp_path / "cmp" / "compare.tex").read_text()
    with pytest.raises(CiarsimError, match="not a results folder"):
        compare(results_dir, tmp_path, tmp_path / "x")


def test_resolve_param_finds_policies_by_label_name_or_index():
    sc = {"network": {"rtt_ms": 70}, "policies": [{"name": "base"}, {"name": "gated",
          "signal": "entropy", "tau": 1.5}, {"name": "ciar", "label": "ciar-a", "tau": 0.2}]}
    assert resolve_param(sc, "network.rtt_ms") == 70
    assert resolve_param(sc, "policies.gated-entropy.tau") == 1.5
    assert resolve_param(sc, "policies.ciar-a.tau") == 0.2
    assert resolve_param(sc, "policies.ciar.tau") == 0.2  # by name, unique
    assert resolve_param(sc, "policies.2.tau") == 0.2 and resolve_param(sc, "nothing.x") is None


def test_trace_events_load_as_chrome_trace_json(results_dir, tmp_path):
    with pytest.raises(CiarsimError, match="--messages all"):  # timelines: first point only
        export_trace_events(results_dir, tmp_path / "t.json", point=1, policy="ciar")
    out = export_trace_events(results_dir, tmp_path / "t.json", point=0, policy="ciar")
    doc = json.loads(out.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert spans and all({"ph", "ts", "dur", "pid", "tid", "name"} <= set(e) for e in spans)
    assert all(e["dur"] >= 0 and e["cat"] == "ciar" for e in spans)
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
    assert "ciar · uplink" in names and doc["otherData"]["point_index"] == 0
    assert {e["tid"] for e in spans} == {1, 2, 3}  # one thread per image
    everything = json.loads(export_trace_events(results_dir, tmp_path / "all.json").read_text())
    assert {e["cat"] for e in everything["traceEvents"] if e["ph"] == "X"} == {"base", "ciar"}
    with pytest.raises(CiarsimError, match="policy 'nope'.*base, ciar"):
        export_trace_events(results_dir, tmp_path / "x.json", policy="nope")
    with pytest.raises(CiarsimError, match="point 9 is not in"):
        export_trace_events(results_dir, tmp_path / "x.json", point=9)
    with pytest.raises(CiarsimError, match="replication 5"):
        export_trace_events(results_dir, tmp_path / "x.json", replication=5)
