"""One direction (uplink or downlink) of one device's connection to the cloud.

The link is the only place that knows bandwidth and delay. A message of B bytes (its payload plus
the application's ``message_header_bytes``, counted by ``ciarsim.sim.payload``) is cut into
``n = ceil(B / (mtu - header))`` packets: ``n - 1`` full ones of ``mtu - header`` payload bytes
and the rest, each carrying ``header`` (``packet_header_bytes``, IP + TCP) more on the wire, so
the message puts ``B + n * header`` bytes on the wire. On a Mahimahi trace each packet also takes
mm-link's 4-byte TUN frame (``B + n * (header + 4)`` bytes: a 1500-byte packet fills one
1504-byte opportunity). Messages are served FIFO per direction: a message starts serialising when
the previous one has finished (including its loss recovery), at the capacity model's rate
(``ciarsim.sim.capacity``); on a Mahimahi trace it shares the opportunity the previous one ended
in, as mm-link's byte stream does. Computed analytically: ONE SimPy timeout per message, never
one per packet. Each packet transmission is
lost with probability ``loss_rate`` (the number of losses per message drawn from a binomial, and
again for the resends); each loss costs ``rto_ms`` of waiting plus re-serialising one full-size
packet. Then the message propagates for the one-way delay plus jitter; it never overtakes the
previous message (arrival = max(previous arrival, computed)).

With ``tcp="linux"`` (``ciarsim.sim.tcp``) the direction also keeps a congestion window
(``tcp.Window``) over the messages in flight (each acknowledged one RTT = 2 x one-way delay after
its last packet left): a message starts once the window has room for it, a message larger than
the window is sent in slow-start rounds a round trip apart (serialisation ends no earlier than
``window_ms`` after it starts, at the capacity's mean rate), the window restarts after an idle
RTO, grows as messages are acknowledged and collapses after a loss; a loss waits
``loss_wait_ms`` (Linux's RTO from the RTT) instead of ``rto_ms``; and jitter is drawn per packet
(FIFO: the message arrives with its latest packet) rather than once per message. The options
``tcp_recovery="rack"`` (Linux's RACK-TLP: a loss with a later packet behind it is resent 1.25 RTT
after it left), ``tcp_window="aimd"`` (congestion avoidance after the first loss, the window cut in
the round a loss happens: ``tcp.aimd_rounds``) and ``tcp_rto_rtt="srtt"`` (the RTO from the kernel's
smoothed RTT) change those rules (``ciarsim.sim.tcp``). For validation, ``script`` replays an
emulated session's losses instead of drawing them and ``log`` keeps every message's record.

``ideal`` links take no time at all: no serialisation, delay, jitter or loss (the paper's
compute-only accounting). Units: ms, bytes.
"""

from __future__ import annotations

from typing import NamedTuple

import math
import operator
from typing import Generator

import numpy as np

from ciarsim.scenario.schema import NetworkConfig
from ciarsim.sim import tcp as tcp_model
from ciarsim.sim.capacity import ConstantCapacity, OpportunityCapacity, RandomCapacity

_JITTER_CHUNK = 512


class TransferRecord(NamedTuple):
    """Where one message's time went (ms) and what it carried. A named tuple: one is made per
    message, and a frozen dataclass's ``__init__`` cost ~10% of the replay (measured)."""

    send_ms: float  # when the sender handed it to the link
    queue_ms: float  # waiting behind earlier messages in the same direction
    serialisation_ms: float  # first transmission of all packets
    loss_ms: float  # RTO waits + resends
    propagation_ms: float  # one-way delay + jitter + hold to keep FIFO order
    arrival_ms: float
    nbytes: int  # message payload bytes
    packets: int
    lost: int  # lost packet transmissions (resends)

    @property
    def link_ms(self) -> float:
        """Time occupying or waiting for the direction: queue + serialisation + loss (ms)."""
        return self.arrival_ms - self.send_ms - self.propagation_ms


def packet_count(nbytes: int, mtu_bytes: int, header_bytes: int) -> int:
    """Number of packets a message of ``nbytes`` payload bytes needs."""
    per = mtu_bytes - header_bytes
    return -(-nbytes // per)


def packet_payloads(nbytes: int, mtu_bytes: int, header_bytes: int) -> np.ndarray:
    """Payload bytes of each packet: full packets, then the remainder."""
    per = mtu_bytes - header_bytes
    n = packet_count(nbytes, mtu_bytes, header_bytes)
    out = np.full(n, per, dtype=np.int64)
    if n:
        out[-1] = nbytes - per * (n - 1)
    return out


class _Jitter:
    """Jitter draws with mean ``mean_ms``, drawn in chunks from one generator."""

    SCALE = {
        "exponential": lambda rng, n: rng.exponential(1.0, n),
        "uniform": lambda rng, n: rng.uniform(0.0, 2.0, n),
        "halfnormal": lambda rng, n: np.abs(rng.standard_normal(n)) * math.sqrt(math.pi / 2),
    }

    def __init__(self, mean_ms: float, dist: str, rng: np.random.Generator | None):
        self.mean, self.draw, self.rng = mean_ms, self.SCALE[dist], rng
        self.buf: list[float] = []

    def __call__(self) -> float:
        if self.mean == 0.0:
            return 0.0
        if not self.buf:
            self.buf = (self.draw(self.rng, _JITTER_CHUNK) * self.mean).tolist()[::-1]
        return self.buf.pop()

    def take(self, n: int) -> list[float]:
        """The next ``n`` draws, in draw order (as ``n`` calls would give them)."""
        out: list[float] = []
        while len(out) < n:
            if not self.buf:
                self.buf = (self.draw(self.rng, _JITTER_CHUNK) * self.mean).tolist()[::-1]
            k = min(n - len(out), len(self.buf))
            out.extend(self.buf[:-k - 1:-1])
            del self.buf[-k:]
        return out


class Link:
    """One direction of one device's connection. ``capacity`` None means an ideal link."""

    def __init__(
        self,
        capacity,
        *,
        one_way_ms: float = 0.0,
        jitter_ms: float = 0.0,
        jitter_dist: str = "exponential",
        loss_rate: float = 0.0,
        rto_ms: float = 200.0,
        mtu_bytes: int = 1500,
        header_bytes: int = 40,
        jitter_rng: np.random.Generator | None = None,
        loss_rng: np.random.Generator | None = None,
        tcp: str = "none",
        tcp_recovery: str = "rto",
        tcp_window: str = "slow-start",
        tcp_rto_rtt: str = "path",
    ):
        self.capacity = capacity
        self.one_way_ms, self.loss_rate, self.rto_ms = one_way_ms, loss_rate, rto_ms
        self.mtu, self.header = mtu_bytes, header_bytes
        self.jitter = _Jitter(jitter_ms, jitter_dist, jitter_rng)
        self.loss_rng = loss_rng
        self.busy_until = 0.0  # end of the last message's serialisation + loss recovery
        self.last_arrival = 0.0
        self._stream = capacity if isinstance(capacity, OpportunityCapacity) else None
        self._frame = header_bytes + (capacity.frame_bytes if self._stream else 0)
        self.tcp = tcp == "linux" and capacity is not None
        self._packet_ms = 8.0 * (mtu_bytes + self._frame - header_bytes) / _mean_bits_per_ms(capacity) \
            if self.tcp else 0.0
        self.rack, self.aimd = tcp_recovery == "rack", tcp_window == "aimd"
        self._srtt = tcp_model.srtt_ms(2.0 * one_way_ms, self.jitter.mean, tcp_rto_rtt)  # what the RTO counts
        self.window = tcp_model.Window(2.0 * one_way_ms, self._srtt, tcp_window)
        self._offsets: list[float] = []
        self._positions: np.random.Generator | None = None  # loss positions (rack, aimd)
        # per message in send order, (positions of its lost first transmissions, lost resends),
        # replacing the drawn losses (None: draw); set by a validation that replays an emulated
        # session's losses (ciarsim.emulate.losses.loss_script)
        self.script: list[tuple[list[int], int]] | None = None
        self._scripted = 0  # messages planned under the script so far
        self.log: list[TransferRecord] | None = None  # every message's record if a list (diagnostics)

    @classmethod
    def from_config(cls, net: NetworkConfig, capacity, jitter_rng, loss_rng) -> "Link":
        """A link with ``net``'s delay, jitter, loss and packet sizes over ``capacity``."""
        return cls(
            capacity, one_way_ms=net.one_way_ms, jitter_ms=net.jitter_ms,
            jitter_dist=net.jitter_dist, loss_rate=net.loss_rate, rto_ms=net.rto_ms,
            mtu_bytes=net.mtu_bytes, header_bytes=net.packet_header_bytes,
            jitter_rng=jitter_rng, loss_rng=loss_rng, tcp=net.tcp, tcp_recovery=net.tcp_recovery,
            tcp_window=net.tcp_window, tcp_rto_rtt=net.tcp_rto_rtt,
        )  # fmt: skip

    @property
    def ideal(self) -> bool:
        return self.capacity is None

    def plan(self, now: float, nbytes: int) -> TransferRecord:
        """Reserve the direction for a message handed over at ``now`` and compute its timing.
        Must be called in send order (FIFO); ``transfer`` does."""
        if self.capacity is None:
            return TransferRecord(now, 0.0, 0.0, 0.0, 0.0, now, nbytes, 0, 0)
        n = -(-nbytes // (self.mtu - self.header))
        start = max(now, self.busy_until)
        lost_at = None  # first transmissions lost, by packet position (None: not drawn yet)
        if self.script is not None:  # the losses an emulated session saw, message by message
            lost_at, resent = self._scripted_losses(n)
            lost = len(lost_at) + resent
        else:
            rounds = self._loss_rounds(n) if self.loss_rate else []
            lost, resent = sum(rounds), sum(rounds[1:])
        positions = self.tcp and lost and (self.rack or self.aimd)
        if positions and lost_at is None:
            lost_at = self._draw_positions(n, rounds[0]) if rounds else []
        after = None  # the window "aimd" leaves
        if self.tcp:  # the congestion window may hold the message back (ciarsim.sim.tcp)
            rtt = 2.0 * self.one_way_ms
            start, cwnd = self.window.start(start, n)
            ser_end = self._send(start, start, 8.0 * (nbytes + n * self._frame))
            if self.aimd and (n > cwnd or lost_at):
                dur, w, ss = tcp_model.aimd_rounds(n, cwnd, self.window.ssthresh, self._packet_ms,
                                                   rtt, lost_at or ())  # fmt: skip
                after = (w, ss)
                ser_end = max(ser_end, start + dur)
            elif n > cwnd:
                ser_end = max(ser_end, start + tcp_model.window_ms(n, cwnd, self._packet_ms, rtt))
        else:
            ser_end = self._send(now, start, 8.0 * (nbytes + n * self._frame))
        fast = False
        end = ser_end
        if lost:
            resend_bits = 8.0 * (min(nbytes, self.mtu - self.header) + self._frame)
            if self.tcp and self.rack:
                end, fast = self._rack(lost_at, resent, n, start, ser_end, rtt, resend_bits)
            else:
                wait = tcp_model.loss_wait_ms(n, self._srtt) if self.tcp else self.rto_ms
                for _ in range(lost):
                    end = self._send(end + wait, end + wait, resend_bits)
        if self.tcp:
            self.window.sent(end, n, lost, fast, after)
        self.busy_until = end
        prop = self.one_way_ms + (self._packet_jitter(n) if self.tcp else self.jitter())
        arrival = end + prop
        if arrival < self.last_arrival:  # hold: never overtake the previous message
            prop += self.last_arrival - arrival
            arrival = self.last_arrival
        self.last_arrival = arrival
        rec = TransferRecord(now, start - now, ser_end - start, end - ser_end, prop, arrival, nbytes, n, lost)
        if self.log is not None:
            self.log.append(rec)
        return rec

    def _packet_jitter(self, packets: int) -> float:
        """Jitter per packet, FIFO (as netem and the emulator's relay apply it): the last
        packet arrives at the latest of each packet's departure plus its own draw (ms after the
        last one's departure; packets ``_packet_ms`` apart)."""
        if self.jitter.mean == 0.0 or packets <= 1:
            return self.jitter()
        offsets = self._offsets
        if len(offsets) < packets:  # k * packet_ms for k = 0, 1, ...: packet k leaves that much later
            offsets.extend(k * self._packet_ms for k in range(len(offsets), packets))
        return max(map(operator.sub, self.jitter.take(packets), offsets))

    def _send(self, now: float, start: float, bits: float) -> float:
        """End of sending ``bits`` handed over at ``now``, the direction free from ``start`` (ms).
        A Mahimahi trace keeps its own byte stream (it needs ``now``: bytes queued before an
        opportunity share it with the previous message); fluid models start at ``start``."""
        if self._stream is not None:
            return self._stream.send(now, bits)
        return self.capacity.finish(start, bits)

    def _loss_rounds(self, packets: int) -> list[int]:
        """Lost transmissions per round: binomial over the packets, then over the resends, until
        none (the last count, 0, is left out)."""
        rounds, k = [], packets
        while k:
            k = int(self.loss_rng.binomial(k, self.loss_rate))
            if k:
                rounds.append(k)
        return rounds

    def _scripted_losses(self, packets: int) -> tuple[list[int], int]:
        """The next message's scripted losses: the positions of its lost first transmissions and
        its count of lost resends. A position beyond the message's ``packets`` (the emulated
        message was cut into more segments) moves to the last free packet before it, so no loss
        is merged away; at most one loss per packet."""
        k = self._scripted
        self._scripted += 1
        if k >= len(self.script):
            return [], 0
        first, resent = self.script[k]
        placed, free = [], packets  # positions below ``free`` are still unlost
        for i in sorted(first, reverse=True):
            i = min(i, free - 1)
            if i < 0:
                break
            placed.append(i)
            free = i
        return placed[::-1], resent

    def _draw_positions(self, packets: int, lost: int) -> list[int]:
        """Positions of ``lost`` first transmissions among ``packets``, drawn uniformly from a
        stream of their own (the loss counts stay the default rule's draws)."""
        if self._positions is None:
            self._positions = self.loss_rng.spawn(1)[0]
        return self._positions.choice(packets, lost, replace=False).tolist()

    def _rack(self, lost_at: list[int], resent: int, n: int, start: float, ser_end: float,
              rtt: float, bits: float) -> tuple[float, bool]:  # fmt: skip
        """``tcp_recovery: rack`` (Linux's RACK-TLP): the first transmissions lost at
        packet positions ``lost_at`` (packet i left when its serialisation ended), each resent at
        ``tcp.rack_resend_ms``; each of the ``resent`` lost resends waits the RTO. Returns the end
        of the last resend and whether fast recovery repaired every loss (no RTO fired)."""
        step = (ser_end - start) / n
        due = sorted(tcp_model.rack_resend_ms(i, n, start + (i + 1) * step, rtt, self._srtt)
                     for i in lost_at)  # fmt: skip
        rto = tcp_model.rto_ms(self._srtt)
        end = ser_end
        for t in due:
            end = self._send(max(end, t), max(end, t), bits)
        for _ in range(resent):
            end = self._send(end + rto, end + rto, bits)
        return end, not resent and n - 1 not in lost_at  # no tail RTO, no lost resend

    def transfer(self, env, nbytes: int) -> Generator:
        """SimPy process function: send ``nbytes``; returns the ``TransferRecord`` on arrival.
        Use as ``rec = yield from link.transfer(env, n)`` or ``env.process(...)``."""
        rec = self.plan(env.now, nbytes)
        if rec.arrival_ms > env.now:
            yield env.timeout(rec.arrival_ms - env.now)
        return rec


def _mean_bits_per_ms(capacity) -> float:
    """A capacity model's mean rate (bits/ms): what the window rounds are timed with."""
    if isinstance(capacity, ConstantCapacity):
        return capacity.mbps * 1000.0
    if isinstance(capacity, OpportunityCapacity):
        return capacity.trace.mean_mbps * 1000.0
    if isinstance(capacity, RandomCapacity):
        return math.exp(capacity.mu + capacity.sigma**2 / 2.0)
    return capacity.table.mean_mbps * 1000.0  # TraceCapacity
