"""The world replays trace v2's dependency graph: hand-built traces on constant links whose
latency is worked out by hand, a chain that replays exactly as format v1, and the new columns."""

import numpy as np
import pandas as pd
import pytest

from ciarsim.errors import TraceFormatError
from ciarsim.scenario.schema import ArrivalConfig, ModelsConfig, NetworkConfig, WorkloadConfig
from ciarsim.sim import simulate
from ciarsim.sim.records import BREAKDOWN_COLUMNS
from ciarsim.sim.synthetic import ciar_like_traces
from ciarsim.trace import (
    DEP_NONE, OP_DTYPE, OP_DTYPE_V1, ImageTrace, TraceSet, cloud_op, device_op, join_op,
    upgrade_v1,
)  # fmt: skip

from test_sim_world import EASY_MODELS, NET_8MBPS, NETWORKS, W

# NET_8MBPS: 8 Mbps = 8000 bits/ms each way, 10 ms one way; 64-byte message header, 1500-byte
# packets with 40-byte headers. A cloud op of 0 steps (no prefill) is answered on arrival.
UP_EMPTY = (64 + 40) * 8 / 8000  # a message with no payload: 0.104 ms
UP_4F = (64 + 4 * 2560 + 8 * 40) * 8 / 8000  # 4 fp16 feature vectors in 8 packets: 10.624 ms
DOWN_1 = (64 + 2 + 40) * 8 / 8000  # one 14-bit token id: 0.106 ms
ROUND_TRIP = UP_EMPTY + 10 + DOWN_1 + 10  # 20.21 ms


def device_ms(steps: int, context: int = 0) -> float:
    """EASY_DEVICE: a pass of 1 token on c cached ones costs 2 + (c + 1) * 5120 / W ms."""
    return sum(2 + (context + j + 1) * 5120 / W for j in range(steps))


def ask(features: int = 0, **kw) -> tuple:
    """An exchange the cloud answers on arrival (no passes), one token down."""
    return cloud_op(steps=0, new_tokens=1, context=0, tokens_down=1, features_up=features, **kw)


def traces_of(*images: list[tuple]) -> TraceSet:
    return TraceSet.from_images(
        [ImageTrace(7 + k, np.array(ops, dtype=OP_DTYPE), np.zeros(4, np.int32),
                    np.zeros(4, np.float32), np.ones(4, np.uint8))
         for k, ops in enumerate(images)],
        {"policy": "hand"},
    )  # fmt: skip


def run(traces: TraceSet, **kw):
    kw.setdefault("workload", WorkloadConfig(images=len(traces), token_grid=2))
    kw.setdefault("models", EASY_MODELS)
    kw.setdefault("network", NET_8MBPS)
    return simulate(traces, seed=0, replication=0, policy="p", **kw)


def one(*ops: tuple):
    rec = run(traces_of(list(ops)))
    return rec.images.iloc[0], rec.messages


def test_chain_is_stop_and_wait():
    row, _ = one(ask(), device_op(5, 0))
    assert row.latency_ms == pytest.approx(ROUND_TRIP + device_ms(5), rel=1e-12)
    assert row.exposed_wait_ms == pytest.approx(ROUND_TRIP, rel=1e-12)
    assert row.max_in_flight == 1
    assert row[list(BREAKDOWN_COLUMNS)].sum() == pytest.approx(row.latency_ms, rel=1e-12)


@pytest.mark.parametrize("steps", [5, 20])  # device shorter (10.0 ms) / longer (40.0 ms) than RTT
def test_device_work_overlaps_a_request_in_flight(steps):
    for tail in ([join_op(0)], []):  # joined explicitly, or the image waits for every answer
        row, _ = one(ask(), device_op(steps, 0, dep=DEP_NONE), *tail)
        d = device_ms(steps)
        assert row.latency_ms == pytest.approx(max(d, ROUND_TRIP), rel=1e-12)
        assert row.device_compute_ms == pytest.approx(d, rel=1e-12)
        assert row.exposed_wait_ms == pytest.approx(max(ROUND_TRIP - d, 0.0), abs=1e-9)
        assert row.device_compute_ms + row.exposed_wait_ms == pytest.approx(row.latency_ms)
        assert row.rtt_wait_ms == pytest.approx(20.0)  # the exchange's own time, hidden or not


def test_two_requests_in_flight_share_the_uplink_fifo():
    row, msgs = one(ask(4), ask(4, dep=DEP_NONE), join_op(1))
    second = 2 * UP_4F + 10 + DOWN_1 + 10  # serialised after the first: 41.354 ms
    assert row.latency_ms == pytest.approx(second, rel=1e-12)
    assert row.max_in_flight == 2 and row.cloud_calls == 2
    assert row.uplink_ms == pytest.approx(UP_4F + 2 * UP_4F, rel=1e-12)  # queue + serialise
    assert row.exposed_wait_ms == pytest.approx(second, rel=1e-12)
    assert row[list(BREAKDOWN_COLUMNS)].sum() > row.latency_ms  # busy times overlap
    up = msgs[msgs.lane == "uplink"].set_index("op")
    assert up.end_ms.tolist() == pytest.approx([UP_4F + 10, 2 * UP_4F + 10], rel=1e-12)
    assert up.start_ms.tolist() == [0.0, 0.0]


def test_join_waits_for_the_answer():
    row, msgs = one(ask(4), device_op(2, 0, dep=DEP_NONE), join_op(0), device_op(1, 0))
    answer = UP_4F + 10 + DOWN_1 + 10  # 30.73 ms, after the 4.0 ms of drafting
    assert row.latency_ms == pytest.approx(answer + device_ms(1), rel=1e-12)
    dev = msgs[msgs.lane == "device"].set_index("op")
    down = msgs[msgs.lane == "downlink"].set_index("op")
    assert dev.start_ms[3] == down.end_ms[0] == pytest.approx(answer, rel=1e-12)
    assert dev.start_ms[1] == 0.0 and dev.end_ms[1] == pytest.approx(device_ms(2))
    assert row.exposed_wait_ms == pytest.approx(answer - device_ms(2), rel=1e-12)


def test_wasted_work_is_charged_and_reported():
    row, msgs = one(device_op(3, 0, wasted=True), device_op(3, 0))
    assert row.latency_ms == pytest.approx(2 * device_ms(3), rel=1e-12)
    assert row.device_wasted_ms == pytest.approx(device_ms(3), rel=1e-12)
    assert msgs.wasted.tolist() == [True, False] and msgs.op.tolist() == [0, 1]
    row, msgs = one(ask(tokens_up=2, decided=1, wasted=True), ask(tokens_up=3, decided=2))
    ids = (4 + 6) * 8 / 8000  # 2 and 3 token ids of 14 bits: 4 and 6 bytes more than empty
    assert row.latency_ms == pytest.approx(2 * ROUND_TRIP + ids, rel=1e-12)
    assert (row.cloud_calls, row.cloud_calls_wasted) == (2, 1)
    assert (row.tokens_uploaded, row.tokens_verified) == (5, 2.0)  # wasted answers decide nothing
    assert msgs[msgs.op == 0].wasted.all() and not msgs[msgs.op == 1].wasted.any()


def test_tokens_verified_is_nan_where_an_exchange_did_not_record_it():
    rec = run(traces_of([ask(tokens_up=3, decided=1), ask(tokens_up=3)], [device_op(1, 0)]))
    df = rec.images
    assert np.isnan(df.tokens_verified.iloc[0]) and df.tokens_uploaded.iloc[0] == 6
    assert df.tokens_verified.iloc[1] == 0.0  # no exchange: the cloud decided nothing


@pytest.mark.parametrize("dep, why", [(1, "op 1 waits for op 1"), (5, "op 1 waits for op 5"),
                                      (-3, "op 1 waits for op -3")])  # fmt: skip
def test_a_bad_dependency_names_the_image_and_op(dep, why):
    bad = traces_of([device_op(1, 0)], [ask(), device_op(1, 0, dep=dep)])
    with pytest.raises(TraceFormatError, match=rf"^trace of image 8 \(position 1 .*{why}, which"):
        run(bad)


def _timing(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["tokens_verified"])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_chain_replays_exactly_as_format_v1(name):
    traces = ciar_like_traces(4, tokens=64, prefix=4, calls=20)
    explicit = traces.ops.copy()  # DEP_PREV spelled out as "op i - 1"
    idx = np.concatenate([np.arange(n) for n in np.diff(traces.offsets)])
    explicit["dep"] = np.where(idx > 0, idx - 1, DEP_NONE)
    v1 = upgrade_v1(traces.ops[list(OP_DTYPE_V1.names)].astype(OP_DTYPE_V1))
    kw = dict(workload=WorkloadConfig(images=4, token_grid=8, arrival=ArrivalConfig(devices=2)),
              models=ModelsConfig(), network=NETWORKS[name])  # fmt: skip
    base = run(traces, **kw)
    for ops in (explicit, v1):
        other = run(TraceSet(traces.images, traces.offsets, ops, traces.tokens, traces.u,
                             traces.source), **kw)  # fmt: skip
        pd.testing.assert_frame_equal(_timing(other.images), _timing(base.images))
        pd.testing.assert_frame_equal(other.messages, base.messages)
    assert np.isnan(other.images.tokens_verified).all()
    assert (base.images.tokens_verified == 24).all() and (base.images.max_in_flight == 1).all()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_pipelined_drafting_hides_round_trips(name):
    kw = dict(tokens=64, prefix=4, calls=20, changed_frac=0.5)
    chain, piped = ciar_like_traces(3, **kw), ciar_like_traces(3, window=4, **kw)
    np.testing.assert_array_equal(chain.source, piped.source)
    wl = WorkloadConfig(images=3, token_grid=8)
    a = run(chain, workload=wl, models=ModelsConfig(), network=NETWORKS[name]).images
    b = run(piped, workload=wl, models=ModelsConfig(), network=NETWORKS[name]).images
    np.testing.assert_allclose(b.device_compute_ms + b.exposed_wait_ms, b.latency_ms, rtol=1e-9)
    assert (b.device_wasted_ms > 0).all() and (a.device_wasted_ms == 0).all()
    assert (b.exposed_wait_ms < a.exposed_wait_ms).all()
    assert (b.cloud_calls == a.cloud_calls).all() and (b.tokens_verified == a.tokens_verified).all()
