"""The kernel-TCP terms of the link model (``ciarsim.sim.tcp``, ``network.tcp: linux``)."""

from __future__ import annotations

import numpy as np
import pytest

from ciarsim.sim import tcp
from ciarsim.sim.capacity import ConstantCapacity
from ciarsim.sim.link import Link


def test_a_message_within_the_window_is_not_delayed():
    assert tcp.window_ms(10, 10, 1.0, 40.0) == 0.0


def test_a_large_message_waits_for_slow_start_rounds():
    # 56 packets of 2.4 ms, window 10, RTT 40: 10 in round 0; after 2.4 + 40 ms a round of 20
    # (48 ms >= RTT: the pipe is full), the remaining 46 at line rate
    assert tcp.window_ms(56, 10, 2.4, 40.0) == pytest.approx(2.4 + 40.0 + 46 * 2.4)


def test_idle_longer_than_the_rto_halves_the_window_per_rto_down_to_the_initial_one():
    rto = tcp.rto_ms(40.0)  # 240 ms
    assert tcp.restart_cwnd(80, rto, 40.0) == 80
    assert tcp.restart_cwnd(80, 2.5 * rto, 40.0) == 20  # two halvings: 80 -> 40 -> 20
    assert tcp.restart_cwnd(80, 100 * rto, 40.0) == tcp.INITIAL_WINDOW


def test_window_holds_a_message_until_the_flight_before_it_is_acknowledged():
    w = tcp.Window(rtt_ms=40.0)
    assert w.start(0.0, 8) == (0.0, 10)
    w.sent(10.0, 8, lost=0)  # acknowledged at 50 ms
    assert w.start(12.0, 4) == (50.0, 18)  # 2 free packets < 4: wait; slow start grew it by 8


def test_a_loss_collapses_the_window():
    w = tcp.Window(rtt_ms=40.0)
    w.start(0.0, 2)
    w.sent(300.0, 2, lost=1)
    assert (w.cwnd, w.ssthresh) == (1.0, 7.0)
    assert w.start(301.0, 2) == (340.0, 1)  # one packet at a time until acknowledgements return


def test_loss_waits_linux_rto_from_the_rtt():
    assert tcp.loss_wait_ms(1, 40.0) == 240.0
    assert tcp.loss_wait_ms(3, 40.0) == 240.0


def test_rack_candidate_repairs_a_loss_with_a_packet_behind_it_in_a_quarter_rtt_past_the_rtt():
    assert tcp.rack_resend_ms(0, 3, 5.0, 40.0) == 5.0 + 50.0  # SACK of a later packet + reo_wnd
    assert tcp.rack_resend_ms(2, 3, 5.0, 40.0) == 5.0 + 240.0  # the tail: the RTO
    assert tcp.rack_resend_ms(0, 1, 5.0, 40.0) == 5.0 + 240.0  # a one-packet message: the RTO


def test_fast_recovery_keeps_the_window_at_ssthresh():
    w = tcp.Window(rtt_ms=40.0)
    w.start(0.0, 2)
    w.sent(300.0, 2, lost=1, fast=True)
    assert (w.cwnd, w.ssthresh) == (7.0, 7.0)


def _lossy(loss_rate: float, **rules) -> Link:
    return Link(ConstantCapacity(10.0), one_way_ms=20.0, loss_rate=loss_rate, header_bytes=52,
                loss_rng=np.random.default_rng(3), tcp="linux", **rules)  # fmt: skip


def test_rack_recovery_draws_the_same_losses_and_repairs_multi_packet_ones_sooner():
    sizes = [66, 30_000, 66, 12_000, 66, 50_000] * 40

    def replay(recovery: str = "rack") -> list:
        link = _lossy(0.05, tcp_recovery=recovery)
        return [link.plan(1000.0 * i, b) for i, b in enumerate(sizes)]

    rto = replay("rto")
    rack = replay()
    assert [r.lost for r in rack] == [r.lost for r in rto]  # the same loss draws
    single = [(a.loss_ms, b.loss_ms) for a, b in zip(rto, rack) if a.lost and a.packets == 1]
    multi = [(a.loss_ms, b.loss_ms) for a, b in zip(rto, rack) if a.lost and a.packets > 1]
    assert single and multi
    assert all(b >= 240.0 for _, b in single)  # a one-packet message still waits the RTO
    assert sum(b for _, b in multi) < 0.7 * sum(a for a, _ in multi)  # most repaired in 1.25 RTT
    assert [r.arrival_ms for r in replay()] == [r.arrival_ms for r in rack]  # deterministic


@pytest.mark.parametrize("packets,cwnd,packet_ms,rtt", [(50, 10, 2.4, 40.0), (200, 10, 0.6, 80.0),
                                                       (30, 4, 12.0, 40.0), (8, 10, 1.0, 20.0)])
def test_aimd_rounds_without_loss_or_ssthresh_are_the_slow_start_rounds(packets, cwnd, packet_ms, rtt):
    dur, _, _ = tcp.aimd_rounds(packets, cwnd, float("inf"), packet_ms, rtt)
    # 0 when the window never binds (the link's serialisation alone sets the time)
    assert dur == pytest.approx(tcp.window_ms(packets, cwnd, packet_ms, rtt))


def test_a_loss_early_in_a_long_message_slows_the_rest_of_it():
    free, w_free, _ = tcp.aimd_rounds(100, 20, 20.0, 2.4, 40.0)
    lossy, w, ss = tcp.aimd_rounds(100, 20, 20.0, 2.4, 40.0, lost_at=[3])
    assert lossy > free + 20.0  # the window fell below the pipe (18 packets): ACK-clocked rounds
    assert ss == pytest.approx(0.7 * 20) and w < w_free


def test_congestion_avoidance_adds_one_packet_per_window():
    assert tcp.grow(10.0, 3, 20.0) == 13.0  # slow start: one per packet
    assert tcp.grow(10.0, 10, 15.0) == pytest.approx((15.0**2 + 2 * 5) ** 0.5)  # 5 in slow start
    w = 20.0
    for _ in range(20):  # one window's worth of acks at a time: about +1 each
        w = tcp.grow(w, int(w), 0.0)
    assert 38.0 < w < 41.0


def test_aimd_follows_slow_start_until_the_first_loss():
    """No HyStart: on a loss-free link the aimd window grows as slow start's (the kernel's
    windows reached 52-110 packets on the validation's clean links, docs/validation.md)."""
    def times(rule: str, lost: bool) -> list[float]:
        link = Link(ConstantCapacity(5.0), one_way_ms=75.0, tcp="linux", tcp_window=rule,
                    tcp_recovery="rack", jitter_rng=np.random.default_rng(0))
        if lost:
            link.script = [([], 0), ([5], 0)] + [([], 0)] * 6
        now, out = 0.0, []
        for nbytes in (40_000, 150_000, 60_000, 150_000, 30_000, 150_000, 90_000, 150_000):
            r = link.plan(now, nbytes)
            out.append(r.arrival_ms)
            now = r.arrival_ms + 30.0
        return out
    # the same rounds, within one packet's serialisation (2.4 ms: aimd counts the last round's
    # packets as full-size ones)
    assert times("aimd", False) == pytest.approx(times("slow-start", False), abs=2.4)
    assert tcp.Window(40.0, rule="aimd").ssthresh == float("inf")
    lossy = times("aimd", True)  # the loss cuts the window in its round, for the rest of the run
    assert lossy[1] > times("slow-start", True)[1]
    assert all(a > b for a, b in zip(lossy[2:], times("aimd", False)[2:]))


def test_the_srtt_rule_counts_jitter_and_the_delayed_ack_in_the_rto():
    assert tcp.srtt_ms(40.0, 5.0) == 40.0  # the default: the path's RTT
    assert tcp.srtt_ms(40.0, 5.0, "srtt") == 40.0 + 10.0 + tcp.DELACK_MS
    link = Link(ConstantCapacity(8.0), one_way_ms=20.0, jitter_ms=5.0, tcp="linux",
                tcp_rto_rtt="srtt", jitter_rng=np.random.default_rng(0))
    link.script = [([0], 0)]  # a one-packet message lost: it waits the RTO from the SRTT
    assert link.plan(0.0, 100).loss_ms > tcp.rto_ms(40.0 + 10.0 + tcp.DELACK_MS)
    assert tcp.Window(40.0, tcp.srtt_ms(40.0, 5.0, "srtt")).rto == tcp.rto_ms(90.0)


def test_congestion_avoidance_growth_accumulates_across_messages():
    """Linux counts the acknowledged packets towards the next window increase (snd_cwnd_cnt):
    the fractions of a packet that each window-filling message adds add up."""
    w = tcp.Window(40.0)
    w.cwnd, w.ssthresh = 10.0, 10.0
    now = 0.0
    for _ in range(5):  # 15-packet messages fill the window: each adds 15 / cwnd
        now, cwnd = w.start(now, 15)
        w.sent(now + 5.0, 15, 0)
        now += 100.0  # acknowledged (RTT 40 ms), not idle for an RTO (240 ms)
    w.start(now, 15)
    expect = 10.0
    for _ in range(5):
        expect += 15 / expect
    assert w.cwnd == pytest.approx(expect)  # was truncated to a whole packet at every start


def test_congestion_avoidance_grows_only_when_the_window_was_full():
    """Linux ``tcp_is_cwnd_limited``: above ssthresh, a flight smaller than the window does not
    grow it (in slow start, half the window suffices)."""
    w = tcp.Window(40.0)
    w.cwnd, w.ssthresh = 10.0, 10.0
    w.start(0.0, 6)
    w.sent(5.0, 6, 0)
    w.start(100.0, 6)
    assert w.cwnd == 10.0
    w.ssthresh = float("inf")  # slow start: 2 x 6 > 10, the window grows by the 6 acknowledged
    w.sent(105.0, 6, 0)
    w.start(200.0, 6)
    assert w.cwnd == 16.0
