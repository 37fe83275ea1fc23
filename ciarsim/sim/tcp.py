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
  below ``RTO_MIN_MS`` = 200 ms (``TCP_RTO_MIN``), so a lost single-packet message is resent
  ``rtt + 200`` ms after it was sent; a loss within a longer message is repaired from the
  receiver's SACKs (RACK) or a tail-loss probe after about two round trips (``loss_wait_ms``).

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
    while True:
        s = min(w, packets - sent)
        if sent + s >= packets or s * packet_ms >= rtt_ms:
            return t + (packets - sent) * packet_ms if t else 0.0
        t += packet_ms + rtt_ms
        sent += s
        w = 2 * s


def grown_cwnd(cwnd: int, packets: int) -> int:
    """The window after a message of ``packets`` is acknowledged in slow start: +1 per packet,
    only when the message used the window (Linux grows cwnd only when cwnd-limited: in slow
    start, when more than half of it was in flight)."""
    return cwnd + packets if 2 * packets > cwnd else cwnd


def loss_wait_ms(packets: int, rtt_ms: float) -> float:
    """Wait before a lost packet is resent: the RTO for a single-packet message (Linux arms no
    tail-loss probe when it would fire after the RTO), about two round trips (RACK / tail-loss
    probe) for longer ones."""
    return rto_ms(rtt_ms) if packets <= 1 else 2.0 * rtt_ms
