"""The world: exact replay of a hand-built trace, breakdowns, arrivals, determinism, errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ciarsim.errors import ScenarioError, TraceFormatError
from ciarsim.scenario.schema import (
    ArrivalConfig, CloudConfig, DeviceConfig, HardwareOverrides, ModelsConfig, NetworkConfig,
    PayloadConfig, WorkloadConfig,
)  # fmt: skip
from ciarsim.sim import IMAGE_COLUMNS, LANES, World, message_bytes, simulate
from ciarsim.sim.nominal import NOMINAL_MODELS
from ciarsim.sim.records import BREAKDOWN_COLUMNS
from ciarsim.sim.synthetic import ciar_like_traces
from ciarsim.trace import (
    OP_DTYPE, SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT, ImageTrace, TraceSet,
    cloud_op, device_op,
)  # fmt: skip

MAHIMAHI = Path("../shared/data/traces/mahimahi")
XL = NOMINAL_MODELS["llamagen-xl"]

# a device whose step is 2 + (context + 1) * 5120 / 124518400 ms (weights stream in 1 ms)
EASY_DEVICE = DeviceConfig(
    model="ciar-device-xl", hardware="snapdragon-8-gen-3", runtime="npu", text_tokens=0, cfg_rows=1,
    overrides=HardwareOverrides(mem_bw_gbps=124.5184, peak_tflops=1e6, t_fixed_ms=1.0,
                                eta_bw=1.0, eta_f=1.0),
)  # fmt: skip
EASY_MODELS = ModelsConfig(cloud=CloudConfig(runtime="eager", text_tokens=128, cfg_rows=1),
                           device=EASY_DEVICE)
W = 124518400  # weight bytes streamed per device step
# the plain link model (40-byte IP + TCP headers, no congestion window): hand-computable
NET_8MBPS = NetworkConfig(capacity="constant", uplink_mbps=8, downlink_mbps=8, rtt_ms=20,
                          packet_header_bytes=40, tcp="none")


def _hand_trace() -> TraceSet:
    ops = np.array(
        [cloud_op(steps=1, new_tokens=1, context=0, tokens_down=1, prompt_up=True),
         device_op(steps=3, context=1)],
        dtype=OP_DTYPE,
    )  # fmt: skip
    source = np.array([SOURCE_CLOUD, SOURCE_DEVICE_KEPT, SOURCE_CLOUD_RESAMPLED, 1], np.uint8)
    img = ImageTrace(7, ops, np.zeros(4, np.int32), np.zeros(4, np.float32), source)
    return TraceSet.from_images([img], {"policy": "hand"})


def _sim(traces, **kw):
    kw.setdefault("workload", WorkloadConfig(images=len(traces), token_grid=2))
    kw.setdefault("models", EASY_MODELS)
    kw.setdefault("network", NET_8MBPS)
    return simulate(traces, seed=kw.pop("seed", 0), replication=kw.pop("replication", 0),
                    policy=kw.pop("policy", "p"), **kw)  # fmt: skip


def test_hand_built_trace_has_the_hand_computed_latency():
    rec = _sim(_hand_trace())
    row = rec.images.iloc[0]
    up = (64 + 128 + 40) * 8 / 8000  # header + prompt + packet header at 8 Mbps: 0.232 ms
    down = (64 + 2 + 40) * 8 / 8000  # one 14-bit token id: 2 bytes; 0.106 ms
    # measured H100 eager steps, batch 1: text prefill of 128 tokens (half way from 64 to 256
    # new tokens in log2, context 0 priced at 128), then one token on 0 + 128 cached tokens
    cloud = (11.3983 + 11.9558) / 2 + 11.6829
    device = 3 * 2.0 + (2 + 3 + 4) * 5120 / W
    assert row.latency_ms == pytest.approx(up + 10 + cloud + down + 10 + device, rel=1e-12)
    assert row.uplink_ms == pytest.approx(up) and row.downlink_ms == pytest.approx(down)
    assert row.rtt_wait_ms == pytest.approx(20.0)
    assert row.cloud_compute_ms == pytest.approx(cloud, rel=1e-12)
    assert row.device_compute_ms == pytest.approx(device)
    assert (row.image, row.cloud_calls, row.bytes_up, row.bytes_down) == (7, 1, 192, 66)
    assert (row.tokens_changed, row.tokens_uploaded, row.tokens) == (1, 0, 4)
    assert np.isnan(row.tokens_verified)  # the exchange did not record what it decided
    assert list(rec.images.columns) == list(IMAGE_COLUMNS)
    lanes = rec.messages.lane.astype(str).tolist()
    assert lanes == ["uplink", "cloud", "downlink", "device"]
    assert rec.messages.end_ms.iloc[-1] == pytest.approx(row.end_ms)


def test_device_text_prefill_runs_before_the_steps():
    ops = np.array([device_op(steps=2, context=0, prefill_text=True)], dtype=OP_DTYPE)
    img = ImageTrace(0, ops, np.zeros(4, np.int32), np.zeros(4, np.float32), np.ones(4, np.uint8))
    models = ModelsConfig(device=EASY_DEVICE.model_copy(update={"text_tokens": 10}))
    row = _sim(TraceSet.from_images([img], {}), models=models).images.iloc[0]
    # a pass of n tokens on c cached ones: 2 + (c + n) * 5120 / W ms
    expect = (2 + 10 * 5120 / W) + (2 + 11 * 5120 / W) + (2 + 12 * 5120 / W)
    assert row.latency_ms == pytest.approx(expect, rel=1e-12)
    assert row.cloud_calls == 0


NETWORKS = {
    "ideal": NetworkConfig(capacity="ideal"),
    "constant": NetworkConfig(capacity="constant", uplink_mbps=11, downlink_mbps=14, rtt_ms=70,
                              jitter_ms=3, loss_rate=0.01, rto_ms=50),
    "random": NetworkConfig(capacity="random", uplink_mbps=2, downlink_mbps=5, rtt_ms=100,
                            capacity_cv=1.0, capacity_interval_ms=50, jitter_ms=5,
                            jitter_dist="uniform", loss_rate=0.05),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_breakdown_sums_to_latency(name):
    traces = ciar_like_traces(3, tokens=64, prefix=4, calls=20)
    rec = _sim(traces, workload=WorkloadConfig(images=3, token_grid=8), network=NETWORKS[name],
               models=ModelsConfig(payload=PayloadConfig(feature_dtype="int8")))  # fmt: skip
    df = rec.images
    np.testing.assert_allclose(df[list(BREAKDOWN_COLUMNS)].sum(axis=1), df.latency_ms, rtol=1e-9)
    if name == "ideal":
        assert (df.uplink_ms == 0).all() and (df.rtt_wait_ms == 0).all()


@pytest.mark.skipif(not (MAHIMAHI / "TMobile-LTE-short.up").exists(), reason="shared traces absent")
def test_mahimahi_trace_network_with_per_device_offsets():
    net = NetworkConfig(
        capacity="trace", uplink_trace=str(MAHIMAHI / "TMobile-LTE-short.up"),
        downlink_trace=str(MAHIMAHI / "TMobile-LTE-short.down"), rtt_ms=60,
    )  # fmt: skip
    traces = ciar_like_traces(4, tokens=64, prefix=4, calls=20)
    wl = WorkloadConfig(images=4, token_grid=8, arrival=ArrivalConfig(devices=4))
    rec = _sim(traces, workload=wl, network=net)
    df = rec.images
    np.testing.assert_allclose(df[list(BREAKDOWN_COLUMNS)].sum(axis=1), df.latency_ms, rtol=1e-9)
    assert df.uplink_ms.nunique() == 4  # each phone enters the trace at its own offset


def _random_run(seed=0, replication=0):
    traces = ciar_like_traces(6, tokens=64, prefix=4, calls=20)
    wl = WorkloadConfig(images=6, token_grid=8,
                        arrival=ArrivalConfig(devices=2, think_time_ms=5.0))  # fmt: skip
    world = World(workload=wl, models=ModelsConfig(), network=NETWORKS["random"], seed=seed,
                  replication=replication, policy="ciar")  # fmt: skip
    return world, traces


def test_two_worlds_in_one_process_are_identical():
    (w1, traces), (w2, _) = _random_run(), _random_run()
    r1, r2 = w1.run(traces), w2.run(traces)  # built together, run one after the other
    pd.testing.assert_frame_equal(r1.images, r2.images)
    pd.testing.assert_frame_equal(r1.messages, r2.messages)
    assert r1.images.to_csv().encode() == r2.images.to_csv().encode()
    assert r1.messages.to_csv().encode() == r2.messages.to_csv().encode()
    w3, _ = _random_run(replication=1)
    assert not w3.run(traces).images.latency_ms.equals(r1.images.latency_ms)


def test_closed_loop_round_robin_with_think_time():
    w, traces = _random_run()
    df = w.run(traces).images
    assert df.device.tolist() == [0, 1, 0, 1, 0, 1]
    for d in (0, 1):
        mine = df[df.device == d]
        np.testing.assert_allclose(mine.start_ms.iloc[1:], mine.end_ms.iloc[:-1] + 5.0)
    assert df.start_ms.iloc[:2].tolist() == [0.0, 0.0]


def test_poisson_arrivals_each_on_its_own_phone():
    traces = ciar_like_traces(5, tokens=16, prefix=1, calls=4)
    wl = WorkloadConfig(images=5, token_grid=4, arrival=ArrivalConfig(kind="poisson", rate_per_s=2))
    rec = _sim(traces, workload=wl)
    df = rec.images
    assert df.device.tolist() == [0, 1, 2, 3, 4] and rec.meta["phones"] == 5
    assert df.start_ms.is_monotonic_increasing and df.start_ms.iloc[0] > 0


def test_cloud_contention_shows_up_as_queueing():
    traces = ciar_like_traces(4, tokens=16, prefix=2, calls=4)
    models = ModelsConfig(cloud=CloudConfig(max_batch=1, cfg_rows=1))
    wl = WorkloadConfig(images=4, token_grid=4, arrival=ArrivalConfig(devices=4))
    df = _sim(traces, workload=wl, models=models).images
    assert (df.cloud_queue_ms > 0).sum() == 3  # the four prefixes arrive together
    np.testing.assert_allclose(df[list(BREAKDOWN_COLUMNS)].sum(axis=1), df.latency_ms, rtol=1e-9)


def test_message_bytes_by_hand():
    p = PayloadConfig()
    assert message_bytes(p, XL, header_bytes=64, tokens=10, features=3) == 64 + 18 + 3 * 2560
    int8 = PayloadConfig(feature_dtype="int8")
    assert message_bytes(int8, XL, header_bytes=0, features=2) == 2 * (1280 + 2)
    assert message_bytes(p, XL, header_bytes=0, dists=1) == 16384 * 2
    assert message_bytes(PayloadConfig(token_bits=16, feature_dim=64), XL, header_bytes=0,
                         tokens=3, features=1, prompt_bytes=100) == 6 + 128 + 100  # fmt: skip


def test_segments_use_the_lane_names():
    traces = ciar_like_traces(1, tokens=16, prefix=2, calls=4)
    rec = _sim(traces, workload=WorkloadConfig(images=1, token_grid=4))
    assert list(rec.messages.lane.cat.categories) == list(LANES)
    assert (rec.messages.end_ms >= rec.messages.start_ms).all()


def test_bad_inputs_raise_errors_that_name_the_field(tmp_path):
    with pytest.raises(ScenarioError, match=r"^workload\.token_grid: the traces have 4 tokens"):
        _sim(_hand_trace(), workload=WorkloadConfig(images=1, token_grid=16))
    with pytest.raises(ScenarioError, match=r"^models\.cloud\.hardware: unknown hardware 'tpu-v9'"):
        _sim(_hand_trace(), models=ModelsConfig(cloud=CloudConfig(hardware="tpu-v9")))
    bad = tmp_path / "bad.up"
    bad.write_text("1\n2\nx\n")
    net = NetworkConfig(capacity="trace", uplink_trace=str(bad), downlink_trace=str(bad))
    with pytest.raises(TraceFormatError, match=r"^network\.uplink_trace: .*bad\.up: line 3"):
        _sim(_hand_trace(), network=net)


def test_trace_network_is_rescaled_to_the_given_mean(tmp_path):
    up, down = tmp_path / "up.csv", tmp_path / "down.csv"
    up.write_text("t_ms,mbps\n0,1\n100,3\n")  # mean 2 Mbps
    down.write_text("t_ms,mbps\n0,8\n")
    net = NetworkConfig(capacity="trace", trace_format="canonical", uplink_trace=str(up),
                        downlink_trace=str(down), uplink_mbps=20)  # fmt: skip
    world = World(workload=WorkloadConfig(images=1, token_grid=2), models=EASY_MODELS,
                  network=net, seed=0, replication=0, policy="p")  # fmt: skip
    assert world.tables[0].mean_mbps == pytest.approx(20.0)
    assert world.tables[1].mean_mbps == pytest.approx(8.0)
    row = world.run(_hand_trace()).images.iloc[0]
    np.testing.assert_allclose(row[list(BREAKDOWN_COLUMNS)].sum(), row.latency_ms, rtol=1e-9)


def test_guidance_rows_make_every_step_costlier():
    """CFG runs a conditional and an unconditional row per image: batch 2 instead of 1."""
    one = ModelsConfig(cloud=CloudConfig(cfg_rows=1), device=EASY_DEVICE)
    two = ModelsConfig(cloud=CloudConfig(cfg_rows=2),
                       device=EASY_DEVICE.model_copy(update={"cfg_rows": 2}))
    a = _sim(_hand_trace(), models=one).images.iloc[0]
    b = _sim(_hand_trace(), models=two).images.iloc[0]
    assert b["cloud_compute_ms"] > a["cloud_compute_ms"]
    assert b["device_compute_ms"] > a["device_compute_ms"]


def test_a_drafter_without_the_inter_head_is_priced_with_a_plain_head():
    """Traces of a policy whose device has no Inter-Head (sd, code_split, entropy gating) cost the
    nominal device with a |V| head: each of the 3 steps streams dim x |V| x 2 bytes fewer."""
    ts = _hand_trace()
    plain = TraceSet(ts.images, ts.offsets, ts.ops, ts.tokens, ts.u, ts.source,
                     {**ts.meta, "device_head": "plain"})
    inter = TraceSet(ts.images, ts.offsets, ts.ops, ts.tokens, ts.u, ts.source,
                     {**ts.meta, "device_head": "interval"})
    a, b = _sim(inter).images, _sim(plain).images
    saved_ms = 3 * 1280 * 16384 * 2 / W  # three steps, 1 ms per W bytes
    assert a["device_compute_ms"][0] - b["device_compute_ms"][0] == pytest.approx(saved_ms)
    assert _sim(ts).images["device_compute_ms"][0] == a["device_compute_ms"][0]  # default: as configured


def test_policies_say_which_device_head_they_run():
    from ciarsim.policies import ciar, gated, sd  # noqa: PLC0415
    from ciarsim.scenario.schema import CiarPolicy, GatedPolicy, SDPolicy  # noqa: PLC0415

    assert ciar.flow(CiarPolicy(name="ciar"), [0], 16, 0, None).device_head == "interval"
    assert gated.flow(GatedPolicy(name="gated", signal="entropy"), [0], 16, 0, None).device_head == "plain"
    assert sd.flow(SDPolicy(name="sd"), [0], 16, 0, None).device_head == "plain"
