"""Mahimahi traces replayed with mm-link's semantics, checked against a per-packet reference that
follows mm-link's ``LinkQueue::rationalize`` (src/frontend/link_queue.cc) one opportunity at a
time."""

import math
from pathlib import Path

import numpy as np
import pytest

from ciarsim.sim.capacity import (
    MAHIMAHI_FRAME_BYTES, MAHIMAHI_OPPORTUNITY_BYTES, OpportunityTrace, TraceCapacity, load_trace,
    read_mahimahi,
)  # fmt: skip
from ciarsim.sim.link import Link, packet_payloads

MAHIMAHI = Path("../shared/data/traces/mahimahi")  # relative to the repo root (pytest's cwd)
SHIPPED = sorted(MAHIMAHI.glob("*.up")) + sorted(MAHIMAHI.glob("*.down"))
needs_traces = pytest.mark.skipif(not SHIPPED, reason="shared traces absent")
MTU, HEADER = 1500, 40


def reference_departures(stamps, offset, messages):
    """Departure time (simulated ms) of the last packet of each message, mm-link style.

    ``messages``: (handed-over time in simulated ms, packet sizes in bytes on the mm-link), in
    order. Trace time is simulated time + ``offset``; mm-link stamps a packet's arrival in whole
    ms and serves the opportunities due at that ms before it enqueues the packet, so opportunity
    ``t`` may carry a packet only if ``floor(arrival) < t``. Opportunities are walked one by one;
    each carries up to 1504 bytes of whatever packets are queued, the rest of it is lost.
    """
    stamps, period, n = [int(s) for s in stamps], int(stamps[-1]), len(stamps)
    queue = [(math.floor(t + offset), size, m)  # (arrival ms in trace time, bytes, message)
             for m, (t, sizes) in enumerate(messages) for size in sizes]  # fmt: skip
    done = [None] * len(messages)
    k = math.floor(queue[0][0] / period) if queue else 0  # start at the first packet's loop
    i, head, left_in_packet = 0, 0, 0
    while head < len(queue):
        t = k * period + stamps[i]
        room = MAHIMAHI_OPPORTUNITY_BYTES
        while room > 0:
            if left_in_packet == 0:
                if head >= len(queue) or not queue[head][0] < t:
                    break
                left_in_packet = queue[head][1]
            sent = min(room, left_in_packet)
            room -= sent
            left_in_packet -= sent
            if left_in_packet == 0:
                done[queue[head][2]] = t - offset  # later packets of a message overwrite
                head += 1
        i += 1
        if i == n:
            i, k = 0, k + 1
    return done


def _packets(nbytes):
    return (packet_payloads(nbytes, MTU, HEADER) + HEADER + MAHIMAHI_FRAME_BYTES).tolist()


@needs_traces
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_one_message_matches_the_per_packet_reference(path):
    trace = load_trace(path, "mahimahi", "network.uplink_trace")
    rng = np.random.default_rng(11)
    for _ in range(25):
        nbytes = int(rng.integers(1, 200_000))
        offset = float(rng.uniform(0, trace.period_ms))
        start = float(rng.uniform(0, 3 * trace.period_ms))
        link = Link(trace.capacity(offset), mtu_bytes=MTU, header_bytes=HEADER)
        got = link.plan(start, nbytes).arrival_ms
        (expect,) = reference_departures(trace.stamps_ms, offset, [(start, _packets(nbytes))])
        assert got == pytest.approx(expect, rel=0, abs=1e-6), (nbytes, offset, start)


@needs_traces
@pytest.mark.parametrize("path", SHIPPED[:2], ids=lambda p: p.name)
def test_back_to_back_messages_share_opportunities_like_mm_link(path):
    """Messages handed over while earlier ones are still queued: the stream continues in the
    opportunity the previous message ended in, and at the same millisecond's later ones."""
    trace = load_trace(path, "mahimahi", "network.uplink_trace")
    rng = np.random.default_rng(5)
    for _ in range(5):
        offset = float(rng.uniform(0, trace.period_ms))
        link = Link(trace.capacity(offset), mtu_bytes=MTU, header_bytes=HEADER)
        t, messages, got = float(rng.uniform(0, trace.period_ms)), [], []
        for _ in range(40):
            t += float(rng.exponential(3.0))
            nbytes = int(rng.choice([60, 700, 1460, 5000, 40_000]))
            messages.append((t, _packets(nbytes)))
            got.append(link.plan(t, nbytes).arrival_ms)
        expect = reference_departures(trace.stamps_ms, offset, messages)
        np.testing.assert_allclose(got, expect, rtol=0, atol=1e-6)


def test_a_burst_in_one_millisecond_serves_a_transfer_started_inside_it(tmp_path):
    """20 opportunities stamped at ms 5: a transfer handed over at 4.7 ms gets all of them (the
    old fluid model spread them over [4, 5) and gave it 30%)."""
    p = tmp_path / "burst.trace"
    p.write_text("5\n" * 20 + "1000\n")
    trace = read_mahimahi(p, "network.uplink_trace")
    nbytes = 20 * MAHIMAHI_OPPORTUNITY_BYTES * 8  # bits of 20 full opportunities
    assert trace.capacity().finish(4.7, nbytes) == 5.0
    assert TraceCapacity(trace.table(), 0.0).finish(4.7, nbytes) > 1000  # the fluid view waits
    assert trace.capacity().finish(5.0, 8.0) == 1000.0  # handed over at 5 ms: too late for ms 5


def test_two_messages_in_one_millisecond_burst_share_it(tmp_path):
    p = tmp_path / "burst.trace"
    p.write_text("5\n" * 20 + "1000\n")
    link = Link(read_mahimahi(p, "f").capacity(), mtu_bytes=MTU, header_bytes=HEADER)
    a = link.plan(1.0, 3 * (MTU - HEADER))  # 3 full packets: opportunities 1-3 of ms 5
    b = link.plan(2.0, 3 * (MTU - HEADER))  # queued before ms 5: opportunities 4-6
    c = link.plan(5.0, 100)  # handed over at 5 ms: the next opportunity is at 1000 ms
    assert (a.arrival_ms, b.arrival_ms, c.arrival_ms) == (5.0, 5.0, 1000.0)
    assert b.queue_ms == 3.0 and b.serialisation_ms == 0.0


@needs_traces
def test_tmobile_downlink_case_the_fluid_model_got_wrong_by_900_ms():
    trace = load_trace(MAHIMAHI / "TMobile-LTE-short.down", "mahimahi", "f")
    start, bits = 123261.94, 40_763 * 8
    fluid = TraceCapacity(trace.table(), 0.0).finish(start, bits) - start
    exact = trace.capacity().finish(start, bits) - start
    (ref,) = reference_departures(trace.stamps_ms, 0.0, [(start, [40_763])])  # one big packet
    assert exact == pytest.approx(ref - start, abs=1e-6)
    assert exact < 10.0 < 900.0 < fluid


def test_rescaling_scales_the_bytes_per_opportunity(tmp_path):
    p = tmp_path / "t.trace"
    p.write_text("1\n1\n3\n4\n4\n4\n10\n")
    trace = read_mahimahi(p, "f")
    assert trace.mean_mbps == pytest.approx(1504 * 8 * 7 / 10 / 1000)
    half = trace.rescaled(trace.mean_mbps / 2)
    assert half.opportunity_bytes == pytest.approx(752) and half.period_ms == 10
    assert half.capacity().finish(0.0, 8 * 752 * 2) == 1.0
    assert half.capacity().finish(0.0, 8 * 752 * 3) == 3.0


def test_fluid_view_conserves_bytes(tmp_path):
    lines = "\n".join(str(x) for x in sorted(np.random.default_rng(1).integers(1, 97, 300)))
    p = tmp_path / "t.trace"
    p.write_text(lines + "\n97\n")
    trace = read_mahimahi(p, "f")
    assert isinstance(trace, OpportunityTrace)
    for b in (1, 10, 32):
        assert trace.table(b).total_bits == pytest.approx(301 * 1504 * 8)


@needs_traces
@pytest.mark.parametrize("aligned", [False, True])
def test_align_traces_gives_both_directions_one_offset(aligned):
    from ciarsim.scenario.schema import ModelsConfig, NetworkConfig, WorkloadConfig
    from ciarsim.sim.world import World

    net = NetworkConfig(
        capacity="trace", uplink_trace=str(MAHIMAHI / "TMobile-LTE-short.up"),
        downlink_trace=str(MAHIMAHI / "TMobile-LTE-short.down"), align_traces=aligned,
    )  # fmt: skip
    world = World(workload=WorkloadConfig(), models=ModelsConfig(), network=net, seed=3,
                  replication=0, policy="p")  # fmt: skip
    offsets = [(p.uplink.capacity.offset_ms, p.downlink.capacity.offset_ms)
               for p in (world.phone(0), world.phone(1))]  # fmt: skip
    assert offsets[0][0] != offsets[1][0]  # each phone still has its own offset
    assert all((up == down) == aligned for up, down in offsets)
