"""The relay's scheduling logic: when one IP packet entering one direction of the link leaves it.

Pure functions of the packet's arrival time and size (no sockets, no clocks), so they are unit
tested without root. One ``Shaper`` per direction, called in arrival order:

1. capacity: a packet of ``size`` IP bytes is serialised FIFO behind the packets before it;
   - ``constant``: at ``mbps``, from ``max(arrival, end of the previous packet)``;
   - ``mahimahi``: Mahimahi's mm-link semantics (a 1500-byte IP packet plus mm-link's 4-byte TUN
     frame fills one delivery opportunity per trace line; the stream may split a packet across
     opportunities; an opportunity finding the queue empty is lost), reusing the simulator's
     ``OpportunityCapacity`` (``ciarsim.sim.capacity``, which cites mahimahi's link_queue.cc);
2. loss: after serialisation the packet is dropped with probability ``loss_rate`` (so a lost
   packet has used the link, as on a radio link, and as the simulator's link charges it);
3. delay: it propagates for ``one_way_ms`` plus a jitter draw (mean ``jitter_ms``, the
   simulator's distributions) and never overtakes the packet before it (FIFO, no reordering).

Times are ms since the replay's time 0 (the relay passes earlier packets, the TCP handshake, with
the one-way delay only). Units: ms, bytes.
"""

from __future__ import annotations

import math

import numpy as np

from ciarsim.sim.capacity import MAHIMAHI_FRAME_BYTES, OpportunityTrace

_CHUNK = 256
JITTER_SCALE = {  # unit-mean draws, as ``ciarsim.sim.link``'s jitter
    "exponential": lambda rng, n: rng.exponential(1.0, n),
    "uniform": lambda rng, n: rng.uniform(0.0, 2.0, n),
    "halfnormal": lambda rng, n: np.abs(rng.standard_normal(n)) * math.sqrt(math.pi / 2),
}


class Shaper:
    """One direction of the emulated link. ``trace`` (a Mahimahi ``OpportunityTrace``, already
    rescaled) replaces ``mbps``; ``offset_ms`` is where in the trace time 0 falls."""

    def __init__(
        self,
        *,
        one_way_ms: float,
        mbps: float | None = None,
        trace: OpportunityTrace | None = None,
        offset_ms: float = 0.0,
        jitter_ms: float = 0.0,
        jitter_dist: str = "exponential",
        loss_rate: float = 0.0,
        rng: np.random.Generator | None = None,
    ):
        if (mbps is None) == (trace is None):
            raise ValueError("a shaper needs exactly one of mbps and trace")
        self.one_way_ms, self.jitter_ms, self.loss_rate = one_way_ms, jitter_ms, loss_rate
        self.bits_per_ms = None if mbps is None else mbps * 1000.0
        self.stream = None if trace is None else trace.capacity(offset_ms)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.draw = JITTER_SCALE[jitter_dist]
        self.busy_until = 0.0  # constant capacity: end of the last serialisation (ms)
        self.last_out = -math.inf  # leave time of the last packet (FIFO)
        self._jit: list[float] = []
        self._unif: list[float] = []
        self.packets = self.bytes = self.dropped = 0

    def serialised(self, now_ms: float, size: int) -> float:
        """When the last bit of a ``size``-byte IP packet arriving at ``now_ms`` has been sent."""
        if self.stream is not None:
            return self.stream.send(now_ms, 8.0 * (size + MAHIMAHI_FRAME_BYTES))
        start = max(now_ms, self.busy_until)
        self.busy_until = start + 8.0 * size / self.bits_per_ms
        return self.busy_until

    def admit(self, now_ms: float, size: int) -> float | None:
        """The time the packet leaves the relay (ms), or None if it is lost."""
        self.packets += 1
        self.bytes += size
        end = self.serialised(now_ms, size)
        if self.loss_rate > 0.0 and self._uniform() < self.loss_rate:
            self.dropped += 1
            return None
        return self._fifo(end + self.one_way_ms + self._jitter())

    def _fifo(self, t: float) -> float:
        self.last_out = max(self.last_out, t)
        return self.last_out

    def _jitter(self) -> float:
        if self.jitter_ms == 0.0:
            return 0.0
        if not self._jit:
            self._jit = (self.draw(self.rng, _CHUNK) * self.jitter_ms).tolist()[::-1]
        return self._jit.pop()

    def _uniform(self) -> float:
        if not self._unif:
            self._unif = self.rng.random(_CHUNK).tolist()[::-1]
        return self._unif.pop()

    def stats(self) -> dict:
        """Packets and bytes seen, packets dropped."""
        return {"packets": self.packets, "bytes": self.bytes, "dropped": self.dropped}
