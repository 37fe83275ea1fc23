"""The kernel-TCP terms of the link model (``ciarsim.sim.tcp``, ``network.tcp: linux``)."""

from __future__ import annotations

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
    assert tcp.rack_wait_ms(3, 40.0) == 80.0  # the candidate rule


def test_link_charges_slow_start_then_not_once_the_window_has_grown():
    # 5 Mbps, 1448-byte payloads in 1500-byte packets: 2.4 ms each; RTT 40 ms
    link = Link(ConstantCapacity(5.0), one_way_ms=20.0, header_bytes=52, tcp="linux")
    first = link.plan(0.0, 56 * 1448)
    assert first.serialisation_ms == pytest.approx(2.4 + 40.0 + 46 * 2.4)
    second = link.plan(first.arrival_ms, 56 * 1448)  # idle 20 ms < RTO: window 66 now
    assert second.serialisation_ms == pytest.approx(56 * 2.4)
    plain = Link(ConstantCapacity(5.0), one_way_ms=20.0, header_bytes=52, tcp="none")
    assert plain.plan(0.0, 56 * 1448).serialisation_ms == pytest.approx(56 * 2.4)
