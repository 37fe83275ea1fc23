"""What kernel TCP adds to a message's time on one link direction (``network.tcp: linux``).

Terms found missing when the link model was validated against real kernel TCP through a shaped
relay (docs/validation.md), each with Linux's constants:

- **congestion window** (slow start): a sender may have at most ``cwnd`` packets unacknowledged.
  The connection starts with ``INITIAL_WINDOW`` = 10 packets (RFC 6928; Linux's default) and in
  slow start grows by one packet per acknowledged packet (doubling per round trip). A message
  larger than the window is sent in rounds, one round trip apart, until a round fills the pipe
  (``window_ms``).
- **slow-start restart after idle** (RFC 2861, Linux ``tcp_slow_start_after_idle = 1``, the
  default): a sender idle for longer than its RTO halves ``cwnd`` per RTO of idleness, down to the
  initial window (Linux ``tcp_cwnd_restart``; ``restart_cwnd``).
- **loss recovery from the measured RTT**: Linux's RTO is SRTT plus a variance term that is never
  below ``RTO_MIN_MS`` = 200 ms (``TCP_RTO_MIN``), so a lost packet is resent ``rtt + 200`` ms
  after it was sent (``loss_wait_ms``).

Three rules have a second option, chosen per scenario (``network.tcp_recovery``,
``network.tcp_window``, ``network.tcp_rto_rtt``) and measured against the kernel in
docs/validation.md: RACK-TLP loss recovery (``rack_resend_ms``: a loss with a later packet behind
it is repaired after ``1.25 rtt``, the window falling to ``ssthresh``), the AIMD window
(``aimd_rounds``, ``grow``: slow start until the first loss, then congestion avoidance adds a
packet per round trip, and a loss cuts the window in the round it happens) and the RTO counted
from the kernel's smoothed RTT (``srtt_ms``).

Not modelled: CUBIC's HyStart, which can end slow start before any loss. Its tests need a round
that starts on a standing queue or a long train of closely spaced ACKs; application-limited
messages that start on an idle path rarely give either: on every clean point of the validation
grid the kernel sent bursts of 52-110 packets back to back, up to 6.6 times (median 3.4) where
HyStart would end slow start on an idle path (docs/validation.md), and a rule that ended it there
made clean links worse.

Units: ms, packets.
"""

from __future__ import annotations

import math

INITIAL_WINDOW = 10  # packets (RFC 6928; Linux TCP_INIT_CWND)
RTO_MIN_MS = 200.0  # Linux TCP_RTO_MIN


def rto_ms(rtt_ms: float) -> float:
    """Linux's retransmission timeout on a path of steady round-trip time ``rtt_ms``."""
    return rtt_ms + RTO_MIN_MS


DELACK_MS = 40.0  # Linux TCP_DELACK_MIN (HZ / 25): the longest a receiver holds an ACK back


def srtt_ms(rtt_ms: float, jitter_ms: float, rule: str = "path") -> float:
    """The RTT the retransmission timer counts on a path of round-trip time ``rtt_ms`` and mean
    one-way jitter ``jitter_ms``: ``path`` (the default) the path's RTT; ``srtt`` the kernel's
    smoothed RTT, which also holds the mean jitter of both directions and the receiver's ACK
    delay, at most the delayed-ACK timer (``DELACK_MS``)."""
    return rtt_ms + 2.0 * jitter_ms + DELACK_MS if rule == "srtt" else rtt_ms


def restart_cwnd(cwnd: int, idle_ms: float, rtt_ms: float) -> int:
    """The window after ``idle_ms`` without sending (Linux ``tcp_cwnd_restart``)."""
    rto = rto_ms(rtt_ms)
    if idle_ms <= rto:
        return cwnd
    floor = min(INITIAL_WINDOW, cwnd)
    idle_ms -= rto
    while idle_ms > 0 and cwnd > floor:
        cwnd >>= 1
        idle_ms -= rto
    return max(cwnd, floor)


def window_ms(packets: int, cwnd: int, packet_ms: float, rtt_ms: float) -> float:
    """Time from the first to the last packet of a message leaving the sender when each packet
    takes ``packet_ms`` to serialise and the window starts at ``cwnd``: rounds of ``cwnd``,
    ``2 cwnd``, ... packets, the next round starting when the first packet of the previous one
    is acknowledged (``packet_ms + rtt_ms`` later), until a round lasts a round trip (the pipe is
    full and the rest goes at line rate), counting full-size packets. 0 when the window never
    binds (the message fits in it): the serialisation alone sets the time."""
    t, sent, w = 0.0, 0, max(cwnd, 1)
    if packets <= w:
        return 0.0
    while True:
        s = min(w, packets - sent)
        if sent + s >= packets or s * packet_ms >= rtt_ms:
            return t + (packets - sent) * packet_ms if t else 0.0
        t += packet_ms + rtt_ms
        sent += s
        w = 2 * s


def aimd_rounds(packets: int, cwnd: float, ssthresh: float, packet_ms: float, rtt_ms: float,
                lost_at=()) -> tuple[float, float, float]:  # fmt: skip
    """``tcp_window: aimd`` over one message: ``(time from its first
    to its last packet leaving, window after, ssthresh after)``. Rounds of ``w`` packets, each
    lasting a round trip (``packet_ms + rtt_ms``, the ACK clock) or, once a round's
    serialisation reaches the RTT (the pipe is full, as in ``window_ms``), its serialisation; the
    time is 0 when no round was shorter than the RTT (the window never held the sender back: the
    link's own serialisation sets the time, as in ``window_ms``); after a round the window
    doubles below ``ssthresh`` (slow start, stopping there), grows by one packet at or above it
    when the round was full (congestion avoidance, cwnd-limited), and after a round
    that lost a first transmission (positions ``lost_at``) falls to ``ssthresh = 0.7 w`` (CUBIC's
    multiplicative decrease, Linux's PRR end state): a loss early in a long message slows the
    rest of it, not only the next message. The last round's packets leave at line rate."""
    lost = sorted(lost_at)
    t, sent, w, i = 0.0, 0, max(float(cwnd), 1.0), 0
    clocked = False  # a round shorter than the RTT: the window, not the link, set the pace
    while True:
        s = max(min(int(w), packets - sent), 1)
        hit = False
        while i < len(lost) and lost[i] < sent + s:
            hit, i = True, i + 1
        sent += s
        if hit:
            ssthresh = max(CUBIC_BETA * w, 2.0)
            w = ssthresh
        elif w < ssthresh:
            w = min(w + s, max(ssthresh, w + 1.0))
        elif s >= int(w):  # congestion avoidance grows only on a full window (cwnd-limited)
            w = grow(w, s, ssthresh)
        if sent >= packets:
            return (t + s * packet_ms if clocked else 0.0), w, ssthresh
        clocked = clocked or s * packet_ms < rtt_ms
        t += s * packet_ms if s * packet_ms >= rtt_ms else packet_ms + rtt_ms  # as window_ms


def loss_wait_ms(packets: int, rtt_ms: float) -> float:
    """Wait before a lost packet of a ``packets``-packet message is resent: the RTO."""
    return rto_ms(rtt_ms)


def grow(cwnd: float, packets: int, ssthresh: float) -> float:
    """The window after ``packets`` more packets are acknowledged (``tcp_window: aimd``): one
    packet per packet while below ``ssthresh`` (slow start), then one per window (congestion
    avoidance: dw/dp = 1/w, so w^2 grows by 2 per packet)."""
    ss = min(packets, max(ssthresh - cwnd, 0.0))
    cwnd += ss
    rest = packets - ss
    return math.sqrt(cwnd * cwnd + 2.0 * rest) if rest > 0 else cwnd


RACK_REO_WND = 0.25  # RACK's reordering window, min_rtt / 4 (RFC 8985 section 6.2; Linux)


def rack_resend_ms(position: int, packets: int, sent_ms: float, rtt_ms: float,
                   srtt: float | None = None) -> float:  # fmt: skip
    """``tcp_recovery: rack`` (Linux's RACK-TLP, RFC 8985): when the first
    transmission of packet ``position`` of a ``packets``-packet message, sent at ``sent_ms``, is
    resent. A packet with a later one behind it is marked lost when that one's selective
    acknowledgement arrives and the reordering window has passed: ``rtt + rtt / 4`` after it
    was sent (fast recovery). The last packet has nothing behind it: its tail-loss probe is
    capped by the RTO counted from its own sending (Linux ``tcp_schedule_loss_probe``; with one
    packet outstanding the probe waits ``2 srtt + TCP_RTO_MIN``, past the RTO), so it waits the
    RTO (from ``srtt``, ``srtt_ms``; default the RTT)."""
    if position < packets - 1:
        return sent_ms + (1.0 + RACK_REO_WND) * rtt_ms
    return sent_ms + rto_ms(rtt_ms if srtt is None else srtt)


CUBIC_BETA = 0.7  # Linux CUBIC's multiplicative decrease (ssthresh = 0.7 cwnd on a loss)


class Window:
    """One sender's congestion window across the messages of a connection direction (ms,
    packets): messages in flight until acknowledged one RTT after their last packet left; slow
    start below ``ssthresh``, congestion avoidance (+1 packet per window) above it; restart after
    an idle RTO; after a loss (recovered by the RTO) ``cwnd = 1`` (Linux ``tcp_enter_loss``)
    and ``ssthresh = 0.7 cwnd`` (CUBIC's beta; BBR, the validation kernel's default, keeps slow
    start instead)."""

    def __init__(self, rtt_ms: float, srtt: float | None = None, rule: str = "slow-start"):
        """``rule``: ``slow-start`` or ``aimd`` (``network.tcp_window``); ``srtt``: the RTT the
        RTO counts (``srtt_ms``; default ``rtt_ms``)."""
        self.srtt = rtt_ms if srtt is None else srtt
        self.rtt, self.rto, self.aimd = rtt_ms, rto_ms(self.srtt), rule == "aimd"
        self.cwnd, self.ssthresh = float(INITIAL_WINDOW), float("inf")
        self.flight: list[tuple[float, int, bool]] = []  # (ack ms, packets, window-limited)
        self.last_end = 0.0

    def _ack(self, upto_ms: float) -> None:
        """Acknowledge the messages whose ack time is <= ``upto_ms`` (``flight`` is in ack order:
        a direction's messages end in send order and share one RTT)."""
        done = 0
        for ack, pk, limited in self.flight:
            if ack > upto_ms:
                break
            done += 1
            if limited and self.aimd:
                self.cwnd = grow(self.cwnd, pk, self.ssthresh)
            elif limited:
                self.cwnd += pk if self.cwnd < self.ssthresh else pk / self.cwnd
        if done:
            del self.flight[:done]

    def start(self, start_ms: float, packets: int) -> tuple[float, int]:
        """When a message of ``packets`` handed over at ``start_ms`` may start, and the window
        it starts with: it waits for acknowledgements while the window holds fewer free packets
        than it needs (at most the whole window)."""
        if self.flight:
            self._ack(start_ms)
        if not self.flight:  # nothing unacknowledged (a chain's usual case): the whole window is free
            idle_ms = start_ms - self.last_end
            if idle_ms > self.rto:  # halved per idle RTO (an integer, as Linux's snd_cwnd)
                if self.aimd:
                    self.ssthresh = max(self.ssthresh, 0.75 * self.cwnd)
                self.cwnd = float(restart_cwnd(int(self.cwnd), idle_ms, self.srtt))
            return start_ms, max(int(self.cwnd), 1)  # the fraction grown so far is kept
        need = min(packets, max(int(self.cwnd), 1))
        free = int(self.cwnd) - sum(pk for _, pk, _ in self.flight)
        for ack, _, _ in list(self.flight):
            if free >= need:
                break
            self._ack(ack)
            start_ms = ack
            free = int(self.cwnd) - sum(pk for _, pk, _ in self.flight)
        return start_ms, max(free, 1)

    def sent(self, end_ms: float, packets: int, lost: int, fast: bool = False,
             after: tuple[float, float] | None = None) -> None:  # fmt: skip
        """Record a message whose last packet left at ``end_ms`` after ``lost`` losses, repaired
        by fast recovery (``fast``: the window falls to ``ssthresh``, Linux's PRR end state) or
        by the RTO (to 1 packet, ``tcp_enter_loss``). ``after``: the (window, ssthresh) that
        ``aimd_rounds`` left, its growth and cuts already counted."""
        limited = False  # whether the acknowledgement grows the window (aimd_rounds grew it)
        if after is None:
            flight = packets + (sum(pk for _, pk, _ in self.flight) if self.flight else 0)
            # only if the window bound the sender (Linux tcp_is_cwnd_limited): in slow start
            # while the flight reached half the window, in congestion avoidance when it was full
            limited = 2 * flight > self.cwnd if self.cwnd < self.ssthresh else flight >= int(self.cwnd)
            if lost:
                self.ssthresh = max(self.cwnd * CUBIC_BETA, 2.0)
                self.cwnd = self.ssthresh if fast else 1.0
        else:
            self.cwnd, self.ssthresh = after
            if lost and not fast:  # an RTO fired
                self.ssthresh, self.cwnd = max(self.cwnd * CUBIC_BETA, 2.0), 1.0
        self.flight.append((end_ms + self.rtt, packets, limited))
        self.last_end = end_ms
