"""The batching cloud server: exact times for requests together, apart and over capacity."""

import pytest
import simpy

from ciarsim.sim.cloud import CloudServer


class StubCost:
    """One step costs 10 ms + 1 ms per sequence in the batch; records what it was asked."""

    def __init__(self):
        self.asked = []

    def step_ms(self, new_tokens, context, batch):
        self.asked.append((new_tokens, context, batch))
        return 10.0 + batch


def _run(requests, max_batch=8, text_tokens=0):
    """requests: (arrival_ms, steps, new_tokens, context) -> list of served CloudRequest."""
    env, cost = simpy.Environment(), StubCost()
    server = CloudServer(env, cost, max_batch, text_tokens)
    out = [None] * len(requests)

    def client(i, at, steps, new, ctx, prefill=False):
        yield env.timeout(at)
        out[i] = yield server.submit(steps, new, ctx, prefill)

    for i, r in enumerate(requests):
        env.process(client(i, *r))
    env.run()
    return out, cost


def test_two_requests_arriving_together_share_one_iteration():
    (a, b), cost = _run([(0.0, 1, 1, 5), (0.0, 1, 4, 9)], text_tokens=120)
    assert (a.start_ms, a.end_ms, b.start_ms, b.end_ms) == (0.0, 12.0, 0.0, 12.0)
    assert cost.asked == [(4, 129, 2)]  # max new tokens, max context + text, batch 2


def test_two_requests_apart_queue_for_the_next_iteration():
    (a, b), _ = _run([(0.0, 1, 1, 5), (5.0, 1, 1, 5)])
    assert (a.start_ms, a.end_ms) == (0.0, 11.0)
    assert (b.arrival_ms, b.start_ms, b.end_ms) == (5.0, 11.0, 22.0)
    assert b.queue_ms == 6.0 and b.compute_ms == 11.0


def test_a_late_request_joins_a_multi_step_request_mid_way():
    (a, b), cost = _run([(0.0, 3, 1, 100), (5.0, 1, 1, 7)])
    assert (b.start_ms, b.end_ms) == (11.0, 23.0)  # joins iteration 2 (batch 2: 12 ms)
    assert a.end_ms == 34.0  # iteration 3 alone again
    assert [c for _, c, _ in cost.asked] == [100, 101, 102]  # context grows per step


def test_max_batch_holds_back_extra_requests():
    reqs, _ = _run([(0.0, 1, 1, 0)] * 3, max_batch=2)
    assert [r.end_ms for r in reqs] == [12.0, 12.0, 23.0]
    assert reqs[2].queue_ms == 12.0


def test_zero_step_request_is_answered_at_once():
    (a,), cost = _run([(3.0, 0, 1, 0)])
    assert a.start_ms == a.end_ms == 3.0 and cost.asked == []


def test_server_idles_and_wakes_again():
    (a, b), _ = _run([(0.0, 1, 1, 0), (100.0, 2, 1, 0)])
    assert a.end_ms == 11.0 and (b.start_ms, b.end_ms) == (100.0, 122.0)
    assert b.queue_ms == pytest.approx(0.0)


def test_text_prefill_is_one_extra_pass_on_an_empty_cache():
    (a, b), cost = _run([(0.0, 2, 1, 0, True), (0.0, 1, 3, 40)], text_tokens=120)
    # pass 1: a prefills 120 text tokens on context 0, b verifies 3 tokens on 40 + 120 cached
    # pass 2: a decodes on 0 + 120; pass 3: a decodes on 121
    assert cost.asked == [(120, 160, 2), (1, 120, 1), (1, 121, 1)]
    assert b.end_ms == 12.0 and a.end_ms == 34.0
