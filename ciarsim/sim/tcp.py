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
  after it was sent (``loss_wait_ms``). The candidate alternative, Linux's RACK-TLP
  (``RECOVERY = "rack"``, ``rack_resend_ms``: a loss with a later packet behind it is repaired
  by fast recovery after ``1.25 rtt``), is evaluated against the emulated grid in
  docs/validation.md.

Units: ms, packets.
"""

from __future__ import annotations

INITIAL_WINDOW = 10  # packets (RFC 6928; Linux TCP_INIT_CWND)
RTO_MIN_MS = 200.0  # Linux TCP_RTO_MIN


def rto_ms(rtt_ms: float) -> float:
    """Linux's retransmission timeout on a path of steady round-trip time ``rtt_ms``."""
    return rtt_ms + RTO_MIN_MS


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


def loss_wait_ms(packets: int, rtt_ms: float) -> float:
    """Wait before a lost packet of a ``packets``-packet message is resent: the RTO."""
    return rto_ms(rtt_ms)


# Loss recovery rule: "rto" (every loss waits the RTO; the default) or "rack" (the candidate
# below). A module switch, not a scenario field: the candidate is evaluated by
# experiments/validation.py and becomes the default only if the validation's fit half says so.
RECOVERY = "rto"
RACK_REO_WND = 0.25  # RACK's reordering window, min_rtt / 4 (RFC 8985 section 6.2; Linux)


def rack_resend_ms(position: int, packets: int, sent_ms: float, rtt_ms: float) -> float:
    """The candidate rule (``RECOVERY = "rack"``, Linux's RACK-TLP, RFC 8985): when the first
    transmission of packet ``position`` of a ``packets``-packet message, sent at ``sent_ms``, is
    resent. A packet with a later one behind it is marked lost when that one's selective
    acknowledgement arrives and the reordering window has passed: ``rtt + rtt / 4`` after it
    was sent (fast recovery). The last packet has nothing behind it: its tail-loss probe is
    capped by the RTO counted from its own sending (Linux ``tcp_schedule_loss_probe``; with one
    packet outstanding the probe waits ``2 srtt + TCP_RTO_MIN``, past the RTO), so it waits the
    RTO."""
    if position < packets - 1:
        return sent_ms + (1.0 + RACK_REO_WND) * rtt_ms
    return sent_ms + rto_ms(rtt_ms)


CUBIC_BETA = 0.7  # Linux CUBIC's multiplicative decrease (ssthresh = 0.7 cwnd on a loss)


class Window:
    """One sender's congestion window across the messages of a connection direction (ms,
    packets): messages in flight until acknowledged one RTT after their last packet left; slow
    start below ``ssthresh``, congestion avoidance (+1 packet per window) above it; restart after
    an idle RTO; after a loss (recovered by the RTO) ``cwnd = 1`` (Linux ``tcp_enter_loss``)
    and ``ssthresh = 0.7 cwnd`` (CUBIC's beta; BBR, the validation kernel's default, keeps slow
    start instead)."""

    def __init__(self, rtt_ms: float):
        self.rtt, self.rto = rtt_ms, rto_ms(rtt_ms)
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
            if limited:
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
            self.cwnd = float(restart_cwnd(int(self.cwnd), idle_ms, self.rtt) if idle_ms > self.rto
                              else int(self.cwnd))
            return start_ms, max(int(self.cwnd), 1)
        need = min(packets, max(int(self.cwnd), 1))
        free = int(self.cwnd) - sum(pk for _, pk, _ in self.flight)
        for ack, _, _ in list(self.flight):
            if free >= need:
                break
            self._ack(ack)
            start_ms = ack
            free = int(self.cwnd) - sum(pk for _, pk, _ in self.flight)
        return start_ms, max(free, 1)

    def sent(self, end_ms: float, packets: int, lost: int, fast: bool = False) -> None:
        """Record a message whose last packet left at ``end_ms`` after ``lost`` losses, repaired
        by fast recovery (``fast``: the window falls to ``ssthresh``, Linux's PRR end state) or
        by the RTO (to 1 packet, ``tcp_enter_loss``)."""
        in_flight = sum(pk for _, pk, _ in self.flight) if self.flight else 0
        limited = 2 * (packets + in_flight) > self.cwnd
        if lost:
            self.ssthresh = max(self.cwnd * CUBIC_BETA, 2.0)
            self.cwnd = self.ssthresh if fast else 1.0
        self.flight.append((end_ms + self.rtt, packets, limited))
        self.last_end = end_ms
