"""The runner end to end on hand-built traces: files, columns, determinism, reuse of parts."""

import numpy as np
import pandas as pd
import pytest

from ciarsim.errors import MissingComponentError
from ciarsim.runner.run import preflight, run_scenario
from ciarsim.scenario import parse_scenario
from ciarsim.trace import OP_DTYPE, SOURCE_CLOUD, SOURCE_DEVICE_KEPT, ImageTrace, TraceSet, cloud_op, device_op

SCENARIO = """
name: tiny
seed: 3
replications: 2
workload: {images: 3, token_grid: 4}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40, jitter_ms: 2}
policies:
  - {name: base}
  - {name: device_only}
sweep:
  network.rtt_ms: [20, 80]
"""

IMAGE_COLUMNS = [
    "policy", "latency_ms", "device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms",
    "cloud_queue_ms", "cloud_compute_ms", "cloud_calls", "bytes_up", "bytes_down",
    "tokens_verified",
]  # fmt: skip


def hand_decoder(policy, workload, models, seed):
    """Hand-built traces, 16 tokens: base = one cloud exchange, device_only = 16 device steps."""
    T = workload.tokens_per_image
    traces = []
    for i in range(workload.prompt_start, workload.prompt_start + workload.images):
        if policy.name == "base":
            ops = [cloud_op(prompt_up=True, steps=T - 1, new_tokens=1, context=0, tokens_down=T)]
            src = SOURCE_CLOUD
        else:
            ops = [device_op(T - 1, 0, prefill_text=True)]
            src = SOURCE_DEVICE_KEPT
        traces.append(ImageTrace(i, np.array(ops, OP_DTYPE), np.zeros(T, np.int32),
                                 np.full(T, np.nan, np.float32), np.full(T, src, np.uint8)))
    return TraceSet.from_images(traces, {"policy": policy.name})


def test_run_writes_results_with_the_documented_columns(tmp_path):
    sc = parse_scenario(SCENARIO)
    out = run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(IMAGE_COLUMNS) <= set(df.columns)
    assert len(df) == 2 * 2 * 2 * 3  # points x policies x replications x images
    for name in ("results.csv", "messages.parquet", "summary.csv", "summary.md", "scenario.yaml",
                 "points.csv"):
        assert (tmp_path / "out" / name).exists(), name
    with np.load(tmp_path / "out" / "samples" / "device_only.npz", allow_pickle=False) as z:
        assert z["source"].shape == (3, 16) and (z["source"] == SOURCE_DEVICE_KEPT).all()
    summary = out.summary.set_index(["point", "policy"])
    assert (summary.xs("base", level="policy")["speedup_vs_base"] == 1.0).all()
    assert (summary.xs("base", level="policy")["cloud_calls_pct"] == 100.0).all()
    assert (summary.xs("device_only", level="policy")["cloud_calls_pct"] == 0.0).all()
    assert (df[df.policy == "base"]["cloud_passes"] == 16).all()  # T passes for T tokens
    # base pays the round trip: a longer RTT makes it slower, device_only does not care
    base = df[df.policy == "base"].groupby("point_index")["latency_ms"].mean()
    dev = df[df.policy == "device_only"].groupby("point_index")["latency_ms"].mean()
    assert base[1] > base[0] and dev[1] == pytest.approx(dev[0])
    assert (df[df.policy == "device_only"]["cloud_calls"] == 0).all()


def test_same_seed_byte_identical_and_parts_reused(tmp_path):
    sc = parse_scenario(SCENARIO)
    a = run_scenario(sc, tmp_path / "a", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    b = run_scenario(sc, tmp_path / "b", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    for name in ("results.parquet", "results.csv", "summary.csv", "messages.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    again = run_scenario(sc, tmp_path / "a", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    assert a.parts_computed == 8 and again.parts_computed == 0 and again.parts_reused == 8
    for name in ("results.parquet", "results.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_preflight_names_what_is_missing(tmp_path):
    sc = parse_scenario(SCENARIO, overrides=[f"models.checkpoints={tmp_path / 'nothing'}"])
    with pytest.raises(MissingComponentError, match="ciarsim train all"):
        preflight(sc)


def test_process_pool_gives_byte_identical_results(tmp_path):
    from ciarsim.runner.executors import PoolExecutor

    sc = parse_scenario(SCENARIO)
    run_scenario(sc, tmp_path / "local", cache_dir=tmp_path / "c1", decoder=hand_decoder)
    run_scenario(sc, tmp_path / "pool", cache_dir=tmp_path / "c2", decoder=hand_decoder,
                 executor=PoolExecutor(2))
    for name in ("results.parquet", "messages.parquet", "summary.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes()


KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from test_run import SCENARIO_MANY, hand_decoder
from ciarsim.runner.run import run_scenario
from ciarsim.scenario import parse_scenario
run_scenario(parse_scenario(SCENARIO_MANY), {out!r}, cache_dir={cache!r}, decoder=hand_decoder)
"""

SCENARIO_MANY = SCENARIO.replace("network.rtt_ms: [20, 80]",
                                 "network.rtt_ms: [" + ", ".join(str(r) for r in range(0, 400, 5)) + "]")


def test_killed_run_resumes_to_identical_results(tmp_path):
    """SIGKILL a run mid-way: finished parts survive intact and a re-run completes the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    here = os.path.dirname(__file__)
    out, cache = str(tmp_path / "killed"), str(tmp_path / "cache")
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(here=here, out=out, cache=cache)])
    parts = tmp_path / "killed" / "parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.images.arrow"))) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(parts.glob("*.images.arrow")))
    assert 10 <= finished < 80 * 2 * 2, "the run must be killed mid-way"
    assert not (tmp_path / "killed" / "results.parquet").exists()
    sc = parse_scenario(SCENARIO_MANY)
    resumed = run_scenario(sc, out, cache_dir=cache, decoder=hand_decoder)
    assert resumed.parts_reused >= finished - 1  # a part being written at the kill is redone
    run_scenario(sc, tmp_path / "clean", cache_dir=tmp_path / "cache2", decoder=hand_decoder)
    for name in ("results.parquet", "messages.parquet", "summary.csv"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


@pytest.mark.ray
def test_ray_executor_matches_local(tmp_path):
    """The Ray path against a local Ray instance started here: byte-identical results."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test,ray]'")
    import sys

    from ciarsim.runner.executors import RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers can't import tests
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sc = parse_scenario(SCENARIO)
        run_scenario(sc, tmp_path / "ray", cache_dir=tmp_path / "c1", decoder=hand_decoder,
                     executor=RayExecutor())
    finally:
        ray.shutdown()
    run_scenario(sc, tmp_path / "local", cache_dir=tmp_path / "c2", decoder=hand_decoder)
    for name in ("results.parquet", "messages.parquet", "summary.csv"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()


def test_summary_has_the_swept_values(tmp_path):
    out = run_scenario(parse_scenario(SCENARIO), tmp_path / "out", cache_dir=tmp_path / "cache",
                       decoder=hand_decoder)  # fmt: skip
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary.columns[:3]) == ["point", "network.rtt_ms", "policy"]
    points = pd.read_csv(tmp_path / "out" / "points.csv").set_index("point")["network.rtt_ms"]
    assert (summary["network.rtt_ms"] == summary["point"].map(points)).all()
    assert sorted(set(summary["network.rtt_ms"])) == [20, 80]
    assert "| point | network.rtt_ms | policy |" in (tmp_path / "out" / "summary.md").read_text()
    assert list(out.summary.columns) == list(summary.columns)
