"""The direct (event-free) replay gives the same records as the SimPy one, bit for bit, where it
applies (one phone, images back to back, at most one exchange in flight), and falls back to the
events where a trace has two requests in flight."""

import numpy as np
import pandas as pd
import pytest

from ciarsim.scenario.schema import ArrivalConfig, ModelsConfig, NetworkConfig, WorkloadConfig
from ciarsim.sim import simulate
from ciarsim.sim.synthetic import ciar_like_traces
from ciarsim.sim.world import World
from ciarsim.trace import DEP_NONE, OP_DTYPE, ImageTrace, TraceSet, cloud_op, device_op

from test_sim_world import NETWORKS

NETS = {**NETWORKS,
        "tcp-none": NetworkConfig(capacity="constant", uplink_mbps=3, downlink_mbps=9, rtt_ms=40, tcp="none",
                                  jitter_ms=4, loss_rate=0.02),
        "4g-like": NetworkConfig(capacity="constant", uplink_mbps=11.2, downlink_mbps=13.9, rtt_ms=70,
                                 jitter_ms=5, loss_rate=0.005)}  # fmt: skip


def _both(traces: TraceSet, **kw):
    kw.setdefault("workload", WorkloadConfig(images=len(traces), token_grid=8))
    kw.setdefault("models", ModelsConfig())
    runs = [simulate(traces, seed=3, replication=1, policy="p", record_segments=False, direct=d, **kw)
            for d in (True, False)]
    return runs


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.images, b.images, check_exact=True)
    assert a.meta == b.meta


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("window", [0, 5])
def test_direct_replay_equals_the_events(net, window):
    traces = ciar_like_traces(5, tokens=64, prefix=4, calls=18, window=window)
    _same(*_both(traces, network=NETS[net]))


def test_direct_replay_with_think_time_and_more_devices_than_images():
    traces = ciar_like_traces(1, tokens=64, prefix=4, calls=10)
    work = WorkloadConfig(images=1, token_grid=8, arrival=ArrivalConfig(devices=4, think_time_ms=30))
    _same(*_both(traces, network=NETS["4g-like"], workload=work))
    traces = ciar_like_traces(4, tokens=64, prefix=4, calls=10)
    work = WorkloadConfig(images=4, token_grid=8, arrival=ArrivalConfig(think_time_ms=250))
    _same(*_both(traces, network=NETS["4g-like"], workload=work))


def test_the_direct_replay_runs_no_events_and_falls_back_for_two_requests_in_flight():
    traces = ciar_like_traces(3, tokens=64, prefix=4, calls=12)
    args = dict(workload=WorkloadConfig(images=3, token_grid=8), models=ModelsConfig(),
                network=NETS["4g-like"], seed=0, replication=0, policy="p", record_segments=False)  # fmt: skip
    world = World(**args)
    direct = world.run(traces)
    assert world.env.now == 0.0 and direct.meta["sim_end_ms"] > 0  # no SimPy event was needed
    two = [cloud_op(prompt_up=True, steps=3, new_tokens=1, context=0, tokens_down=4, dep=DEP_NONE),
           cloud_op(steps=2, new_tokens=1, context=3, tokens_up=2, tokens_down=1, dep=DEP_NONE),
           device_op(2, 0, prefill_text=True, dep=DEP_NONE)]  # fmt: skip
    pair = TraceSet.from_images([ImageTrace(0, np.array(two, dtype=OP_DTYPE), np.zeros(4, np.int32),
                                            np.zeros(4, np.float32), np.ones(4, np.uint8))], {"policy": "hand"})
    a, b = _both(pair, workload=WorkloadConfig(images=1, token_grid=2), network=NETS["4g-like"])
    _same(a, b)
    assert a.images.max_in_flight.iloc[0] == 2  # the cloud batched them: the events ran it
