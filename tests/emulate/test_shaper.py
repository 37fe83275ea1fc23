"""The relay's scheduling logic (pure functions; no root needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ciarsim.emulate.shaper import Shaper
from ciarsim.sim.capacity import OpportunityTrace


def test_constant_rate_serialises_fifo_then_delays():
    s = Shaper(one_way_ms=20.0, mbps=8.0)  # 8 Mbps: a 1000-byte packet takes 1 ms
    assert s.admit(0.0, 1000) == pytest.approx(21.0)
    assert s.admit(0.0, 1000) == pytest.approx(22.0)  # queued behind the first
    assert s.admit(10.0, 500) == pytest.approx(30.5)  # idle link: starts at once


def test_mahimahi_trace_delivers_at_opportunities_with_the_tun_frame():
    # one 1504-byte opportunity every 2 ms: a 1500-byte IP packet (+4 frame bytes) fills one
    trace = OpportunityTrace(np.arange(2, 101, 2, dtype=np.int64))
    s = Shaper(one_way_ms=0.0, trace=trace)
    assert s.admit(0.0, 1500) == 2.0
    assert s.admit(0.0, 1500) == 4.0
    assert s.admit(0.5, 700) == 6.0  # shares the opportunity at 6 ms ...
    assert s.admit(0.5, 700) == 6.0  # ... with the next small packet (1408 of 1504 bytes)
    assert s.admit(10.0, 100) == 12.0  # opportunities at or before arrival are lost


def test_loss_rate_and_jitter_match_their_settings():
    s = Shaper(one_way_ms=10.0, mbps=1000.0, loss_rate=0.05, jitter_ms=4.0,
               rng=np.random.default_rng(1))  # fmt: skip
    out = [s.admit(float(t) * 50.0, 100) for t in range(20000)]
    kept = np.array([o - 50.0 * t for t, o in enumerate(out) if o is not None])
    assert abs(1 - len(kept) / 20000 - 0.05) < 0.005
    assert np.mean(kept - 10.0 - 0.0008) == pytest.approx(4.0, rel=0.05)
    assert s.stats()["dropped"] == 20000 - len(kept)


def test_packets_never_overtake():
    s = Shaper(one_way_ms=5.0, mbps=1000.0, jitter_ms=20.0, rng=np.random.default_rng(0))
    out = [s.admit(float(t), 100) for t in range(500)]
    assert all(b >= a for a, b in zip(out, out[1:]))


def test_same_seed_same_schedule():
    make = lambda: Shaper(one_way_ms=5.0, mbps=2.0, jitter_ms=3.0, loss_rate=0.1,  # noqa: E731
                          rng=np.random.default_rng([4, 2]))  # fmt: skip
    a, b = make(), make()
    assert [a.admit(t * 3.0, 900) for t in range(300)] == [b.admit(t * 3.0, 900) for t in range(300)]


def test_a_shaper_needs_one_capacity():
    with pytest.raises(ValueError):
        Shaper(one_way_ms=1.0)
