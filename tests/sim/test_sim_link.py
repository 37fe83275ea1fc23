"""Links: exact timings on hand-computed cases and properties of the network model."""

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from ciarsim.sim.capacity import CapacityTable, ConstantCapacity, TraceCapacity
from ciarsim.sim.link import Link, packet_count, packet_payloads


def _link(capacity, **kw):
    kw.setdefault("one_way_ms", 30.0)
    return Link(capacity, mtu_bytes=1500, header_bytes=40, **kw)


def test_one_message_on_a_constant_link():
    # 3000 B -> packets of 1460 B: 3 packets, 3000 + 3 * 40 = 3120 B = 24960 bit at 10 Mbps
    env = simpy.Environment()
    link = _link(ConstantCapacity(10.0))
    proc = env.process(link.transfer(env, 3000))
    env.run()
    rec = proc.value
    assert (rec.packets, rec.lost) == (3, 0)
    assert rec.serialisation_ms == pytest.approx(2.496)
    assert rec.propagation_ms == pytest.approx(30.0)
    assert env.now == pytest.approx(32.496) and rec.arrival_ms == pytest.approx(32.496)


def test_two_queued_messages_serialise_back_to_back():
    env = simpy.Environment()
    link = _link(ConstantCapacity(10.0))
    a = env.process(link.transfer(env, 3000))
    b = env.process(link.transfer(env, 3000))
    env.run()
    assert a.value.arrival_ms == pytest.approx(32.496)
    assert b.value.queue_ms == pytest.approx(2.496)
    assert b.value.arrival_ms == pytest.approx(34.992)
    assert b.value.link_ms == pytest.approx(4.992)


def test_ideal_link_takes_no_time_and_no_event():
    env = simpy.Environment()
    link = Link(None, one_way_ms=50.0, loss_rate=0.5, loss_rng=np.random.default_rng(0))
    proc = env.process(link.transfer(env, 10**6))
    env.run()
    assert env.now == 0.0 and proc.value.arrival_ms == 0.0


def test_loss_costs_rto_and_a_resend():
    # seed 1 loses the packet, then its resend, then the second resend gets through
    link = _link(ConstantCapacity(8.0), loss_rate=0.5, rto_ms=100.0,
                 loss_rng=np.random.default_rng(1))  # fmt: skip
    rec = link.plan(0.0, 1460)  # one full packet: 1500 B = 1.5 ms at 8 Mbps
    assert rec.lost == 2
    assert rec.serialisation_ms == pytest.approx(1.5)
    assert rec.loss_ms == pytest.approx(2 * (100.0 + 1.5))
    assert rec.arrival_ms == pytest.approx(1.5 + 203.0 + 30.0)


def test_a_scripted_link_loses_exactly_the_scripted_transmissions():
    # no loss rate, no loss generator: the script alone decides (message 1: two first
    # transmissions and one resend lost; messages 0 and 2 and any beyond the script: none)
    link = _link(ConstantCapacity(8.0), rto_ms=100.0)
    link.script = [([], 0), ([0, 1], 1), ([], 0)]
    recs = [link.plan(1000.0 * k, 2920) for k in range(4)]
    assert [r.lost for r in recs] == [0, 3, 0, 0]
    assert recs[1].loss_ms == pytest.approx(3 * (100.0 + 1.5))
    assert recs[0].arrival_ms - 0.0 == pytest.approx(recs[2].arrival_ms - 2000.0)


def test_scripted_positions_beyond_a_shorter_message_are_kept_apart():
    # the emulated message was cut into more segments than the simulated one has packets:
    # losses past its end move to the last free packets, none is merged away
    link = _link(ConstantCapacity(8.0), rto_ms=100.0)
    link.script = [([5, 9], 0), ([0, 1, 2], 1)]
    assert link._scripted_losses(2) == ([0, 1], 0)
    assert link._scripted_losses(2) == ([0, 1], 1)  # at most one loss per packet
    link.script, link._scripted = [([5, 9], 0)], 0
    assert link.plan(0.0, 2920).lost == 2


def test_scripted_positions_decide_rack_recovery():
    from ciarsim.sim import tcp

    def loss_ms(position: int) -> float:
        link = Link(ConstantCapacity(8.0), one_way_ms=30.0, tcp="linux", tcp_recovery="rack")
        link.script = [([position], 0)]
        return link.plan(0.0, 4 * 1448).loss_ms

    # a lost packet with one behind it is repaired by fast recovery (1.25 RTT after it left),
    # a lost last packet waits the RTO (RTT + 200 ms)
    assert loss_ms(0) < 100.0 < tcp.rto_ms(60.0) - 10.0 < loss_ms(3)


def test_jitter_is_seeded_and_has_the_mean():
    def arrivals(seed):
        link = _link(ConstantCapacity(100.0), jitter_ms=5.0, jitter_rng=np.random.default_rng(seed))
        return [link.plan(t * 1000.0, 100).propagation_ms for t in range(4000)]

    a = arrivals(1)
    assert a == arrivals(1) and a != arrivals(2)
    assert np.mean(a) - 30.0 == pytest.approx(5.0, rel=0.06)


# -- properties ---------------------------------------------------------------------------------


@given(st.integers(0, 10**7), st.integers(64, 9000), st.integers(0, 63))
def test_bytes_are_conserved_in_packets(nbytes, mtu, header):
    p = packet_payloads(nbytes, mtu, header)
    assert int(p.sum()) == nbytes and len(p) == packet_count(nbytes, mtu, header)
    assert np.all(p > 0) and np.all(p <= mtu - header)


def _trace_cap(mbps, offset):
    edges = np.array([0.0, 100.0, 250.0, 400.0])
    return TraceCapacity(CapacityTable(edges, np.array([1.0, 0.0, 3.0]) * mbps / 1.5), offset)


caps = st.sampled_from(["constant", "trace"])


@settings(max_examples=80, deadline=None)
@given(caps, st.floats(0.1, 500), st.floats(0, 400), st.integers(0, 10**6), st.integers(0, 10**6))
def test_transfer_time_is_monotone_in_bytes(kind, mbps, offset, b1, b2):
    lo, hi = sorted((b1, b2))

    def t(nbytes):
        cap = ConstantCapacity(mbps) if kind == "constant" else _trace_cap(mbps, offset)
        return _link(cap).plan(7.0, nbytes).arrival_ms

    assert t(lo) <= t(hi)


@settings(max_examples=80, deadline=None)
@given(caps, st.floats(0.1, 500), st.floats(0.1, 500), st.floats(0, 400), st.integers(1, 10**6))
def test_transfer_time_is_non_increasing_in_bandwidth(kind, m1, m2, offset, nbytes):
    slow, fast = sorted((m1, m2))

    def t(mbps):
        cap = ConstantCapacity(mbps) if kind == "constant" else _trace_cap(mbps, offset)
        return _link(cap).plan(7.0, nbytes).arrival_ms

    assert t(slow) >= t(fast) - 1e-9 * t(fast)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 500), st.floats(1, 5000), st.integers(0, 10**6), st.floats(0, 1e4))
def test_constant_rate_trace_gives_the_constant_link_times(mbps, period, nbytes, send):
    flat = TraceCapacity(CapacityTable(np.array([0.0, period]), np.array([mbps])), 0.0)
    a = _link(flat).plan(send, nbytes)
    b = _link(ConstantCapacity(mbps)).plan(send, nbytes)
    assert a.arrival_ms == pytest.approx(b.arrival_ms, rel=1e-9, abs=1e-9)


messages = st.lists(st.tuples(st.floats(0, 50), st.integers(0, 200_000)), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(caps, messages, st.floats(0, 0.3), st.floats(0, 20), st.integers(0, 2**32 - 1))
def test_causality_and_fifo(kind, msgs, loss, jitter, seed):
    cap = ConstantCapacity(5.0) if kind == "constant" else _trace_cap(5.0, 30.0)
    link = _link(
        cap, loss_rate=loss, jitter_ms=jitter, jitter_dist="halfnormal",
        jitter_rng=np.random.default_rng(seed), loss_rng=np.random.default_rng(seed + 1),
    )  # fmt: skip
    now, last = 0.0, -1.0
    for gap, nbytes in msgs:
        now += gap
        rec = link.plan(now, nbytes)
        assert rec.arrival_ms >= now + 30.0  # never before send + one-way delay
        assert rec.arrival_ms >= last  # never overtakes
        assert rec.queue_ms >= 0 and rec.loss_ms >= 0 and rec.propagation_ms >= 30.0
        last = rec.arrival_ms
