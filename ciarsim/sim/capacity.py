"""Link capacity over time: trace importers, capacity tables, and capacity models.

Every capacity model has ``finish(start_ms, bits) -> end_ms``: the earliest time at which
``bits`` have been sent when sending starts at ``start_ms`` on an idle link, computed
analytically (O(log n) per message).

Trace formats:

- **mahimahi** (Winstein et al., NSDI 2013; mm-link): one line per delivery opportunity,
  integer ms timestamps, repeated timestamps for several opportunities in one ms, period = the
  last timestamp; the trace loops. Read into an ``OpportunityTrace`` and replayed with mm-link's
  own semantics by ``OpportunityCapacity`` (see there): discrete opportunities, not a fluid rate.
- **pensieve** (Mao et al., SIGCOMM 2017, "cooked" traces): ``seconds Mbps`` per line.
- **canonical**: CSV with header ``t_ms,mbps``.
The last two become a piecewise-constant ``CapacityTable`` (fluid, ``TraceCapacity``): each row's
rate holds until the next row's time; the last row holds for the median spacing of the rows (1 s
if there is a single row). Times are shifted to start at 0.

Units: ms, bits, bytes, Mbps (1 Mbps = 1000 bits/ms).
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ciarsim.errors import TraceFormatError

# mm-link's bytes per delivery opportunity: ``LinkQueue::PACKET_SIZE = 1504`` ("default max TUN
# payload size", https://github.com/ravinet/mahimahi/blob/master/src/frontend/link_queue.hh). Its
# TUN device is opened with IFF_TUN and without IFF_NO_PI (src/util/netdevice.cc), so every packet
# it reads carries a 4-byte ``struct tun_pi`` in front of the IP packet: a 1500-byte IP packet fills
# exactly one opportunity, as the mm-link man page's "1500 bytes" per opportunity says.
MAHIMAHI_OPPORTUNITY_BYTES = 1504
MAHIMAHI_FRAME_BYTES = 4  # tun_pi bytes added to each IP packet on an mm-link


@dataclass(frozen=True)
class CapacityTable:
    """Piecewise-constant capacity: ``mbps[i]`` from ``edges_ms[i]`` to ``edges_ms[i+1]``;
    ``edges_ms[0] == 0``; the table loops with period ``edges_ms[-1]``."""

    edges_ms: np.ndarray  # (n + 1,) float64
    mbps: np.ndarray  # (n,) float64
    source: str = ""

    @property
    def period_ms(self) -> float:
        return float(self.edges_ms[-1])

    @property
    def total_bits(self) -> float:
        """Bits the table carries in one period."""
        return float(np.sum(self.mbps * 1000.0 * np.diff(self.edges_ms)))

    @property
    def mean_mbps(self) -> float:
        """Time-average capacity over one period (Mbps)."""
        return self.total_bits / self.period_ms / 1000.0

    def rescaled(self, mean_mbps: float) -> "CapacityTable":
        """The same shape scaled to a time-average of ``mean_mbps``."""
        return CapacityTable(self.edges_ms, self.mbps * (mean_mbps / self.mean_mbps), self.source)

    @cached_property
    def curve(self) -> "_Cumulative":
        """Cumulative-bits view used by ``TraceCapacity`` (built once, shared by devices)."""
        return _Cumulative(self.edges_ms, self.mbps * 1000.0)

    def capacity(self, offset_ms: float = 0.0) -> "TraceCapacity":
        """A link following this table, entered ``offset_ms`` into its period."""
        return TraceCapacity(self, offset_ms)


@dataclass(frozen=True)
class OpportunityTrace:
    """A Mahimahi trace: delivery opportunities at ``stamps_ms`` (sorted, within one period; the
    last one is the period), each carrying ``opportunity_bytes``; loops like mm-link."""

    stamps_ms: np.ndarray  # (n,) int64
    opportunity_bytes: float = MAHIMAHI_OPPORTUNITY_BYTES
    source: str = ""

    @property
    def period_ms(self) -> float:
        return float(self.stamps_ms[-1])

    @property
    def total_bits(self) -> float:
        """Bits the opportunities of one period carry."""
        return len(self.stamps_ms) * self.opportunity_bytes * 8.0

    @property
    def mean_mbps(self) -> float:
        """Time-average capacity over one period (Mbps)."""
        return self.total_bits / self.period_ms / 1000.0

    def rescaled(self, mean_mbps: float) -> "OpportunityTrace":
        """The same opportunities, each carrying proportionally more or fewer bytes, so that the
        time-average is ``mean_mbps``."""
        scale = mean_mbps / self.mean_mbps
        return OpportunityTrace(self.stamps_ms, self.opportunity_bytes * scale, self.source)

    def table(self, bin_ms: int = 1) -> CapacityTable:
        """A fluid view (for ``write_canonical``): the bytes of the opportunities stamped in
        ``(t - bin_ms, t]`` spread evenly over the bin ``[t - bin_ms, t)``; bytes are conserved."""
        period = int(self.stamps_ms[-1])
        edges = np.append(np.arange(0, period, bin_ms, dtype=np.float64), float(period))
        idx = np.maximum(self.stamps_ms - 1, 0) // bin_ms
        counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
        bits = counts * self.opportunity_bytes * 8.0
        return CapacityTable(edges, bits / np.diff(edges) / 1000.0, self.source)

    @cached_property
    def stamps(self) -> list[float]:
        """``stamps_ms`` as a Python list (fast scalar bisection; built once, shared)."""
        return self.stamps_ms.astype(np.float64).tolist()

    def capacity(self, offset_ms: float = 0.0) -> "OpportunityCapacity":
        """A link replaying this trace as mm-link does, entered ``offset_ms`` into its period."""
        return OpportunityCapacity(self, offset_ms)


# --------------------------------------------------------------------------------------------
# curves


class _Cumulative:
    """Cumulative bits at the edges of a piecewise-constant rate (bits/ms), as Python lists."""

    def __init__(self, edges_ms: np.ndarray, bits_per_ms: np.ndarray):
        cum = np.concatenate([[0.0], np.cumsum(bits_per_ms * np.diff(edges_ms))])
        self.edges, self.rates, self.cum = edges_ms.tolist(), bits_per_ms.tolist(), cum.tolist()
        self.period, self.bits = self.edges[-1], self.cum[-1]

    def bits_at(self, tau: float) -> float:
        """Bits deliverable from time 0 to ``tau`` (0 <= tau < period)."""
        i = min(bisect_right(self.edges, tau), len(self.rates)) - 1
        return self.cum[i] + self.rates[i] * (tau - self.edges[i])

    def time_at(self, bits: float) -> float:
        """Earliest time at which ``bits`` (0 < bits <= total) have been delivered."""
        j = min(bisect_left(self.cum, bits), len(self.cum) - 1)
        if self.cum[j] <= bits:
            return self.edges[j]
        return self.edges[j - 1] + (bits - self.cum[j - 1]) / self.rates[j - 1]


class ConstantCapacity:
    """A constant ``mbps`` link."""

    def __init__(self, mbps: float):
        self.mbps = mbps
        self._rate = mbps * 1000.0  # bits/ms

    def finish(self, start_ms: float, bits: float) -> float:
        """End of serialising ``bits`` started at ``start_ms`` (ms)."""
        return start_ms + bits / self._rate


class TraceCapacity:
    """A looping ``CapacityTable`` entered ``offset_ms`` into its period."""

    def __init__(self, table: CapacityTable, offset_ms: float = 0.0):
        self.table, self.offset_ms = table, offset_ms
        self._c = table.curve
        if self._c.bits <= 0:
            raise TraceFormatError(f"{table.source}: the trace carries no bytes")

    def finish(self, start_ms: float, bits: float) -> float:
        """End of serialising ``bits`` started at ``start_ms`` (ms), looping the trace."""
        if bits <= 0:
            return start_ms
        c, t = self._c, start_ms + self.offset_ms
        k = math.floor(t / c.period)
        tau = min(max(t - k * c.period, 0.0), math.nextafter(c.period, 0.0))
        target = c.bits_at(tau) + bits
        m = math.ceil(target / c.bits) - 1
        rem = target - m * c.bits
        if rem <= 0.0:  # float guard: keep rem in (0, bits per period]
            m, rem = m - 1, rem + c.bits
        return start_ms + (m * c.period + c.time_at(rem) - tau)


class OpportunityCapacity:
    """mm-link's delivery semantics over a looping ``OpportunityTrace`` entered ``offset_ms`` into
    its period (trace time = simulated time + ``offset_ms``). One object per link direction: it
    keeps the position of the link's byte stream.

    As ``LinkQueue::rationalize`` in mahimahi's src/frontend/link_queue.cc
    (https://github.com/ravinet/mahimahi/blob/master/src/frontend/link_queue.cc):

    - opportunity ``j`` (``j = k * n + i``: loop ``k``, line ``i``) happens at trace time
      ``k * period + stamps[i]`` and can carry ``opportunity_bytes`` of the FIFO byte stream;
      a packet may be split across opportunities and several packets may share one;
    - a packet handed over at trace time ``a`` can use an opportunity at ``t`` only if ``a < t``:
      mm-link stamps the arrival in whole ms and runs the opportunities due at or before that
      ms before it enqueues the packet (``read_packet``), so ``floor(a) < t``, which for integer
      ``t`` is ``a < t``;
    - an opportunity that finds no queued bytes is lost; the part of one left over after the
      queue empties is lost too;
    - a packet leaves at the time of the opportunity that carries its last byte.

    The queue is unbounded (mm-link's default ``infinite`` queue). Bytes are counted as a stream
    position: opportunity ``j`` carries bytes ``[j * B, (j + 1) * B)``; a message of ``W`` bytes
    handed over at ``a`` starts at ``max(position, B * N(a))``, with ``N(a)`` the opportunities at
    or before ``a``, and ends with opportunity ``ceil(end / B) - 1``. O(log n) per message.
    """

    def __init__(self, trace: OpportunityTrace, offset_ms: float = 0.0):
        self.trace, self.offset_ms = trace, offset_ms
        self._s, self._n = trace.stamps, len(trace.stamps)
        self._period, self._b = trace.period_ms, trace.opportunity_bytes
        self.position = 0.0  # bytes of the stream sent or lost so far
        self.frame_bytes = MAHIMAHI_FRAME_BYTES

    def _count(self, t: float) -> int:
        """Opportunities at trace times <= ``t`` (ms, >= 0)."""
        k = math.floor(t / self._period)
        r = min(max(t - k * self._period, 0.0), math.nextafter(self._period, 0.0))
        return k * self._n + bisect_right(self._s, r)

    def _time(self, j: int) -> float:
        """Trace time of opportunity ``j`` (ms)."""
        k, i = divmod(j, self._n)
        return k * self._period + self._s[i]

    def _deliver(self, now_ms: float, nbytes: float, position: float) -> tuple[float, float]:
        """(end ms, new position) of ``nbytes`` handed over at ``now_ms`` behind ``position``."""
        if nbytes <= 0:
            return now_ms, position
        start = max(position, self._b * self._count(now_ms + self.offset_ms))
        end = start + nbytes
        last = math.ceil(end / self._b) - 1
        return self._time(last) - self.offset_ms, end

    def finish(self, start_ms: float, bits: float) -> float:
        """When ``bits`` (bytes on the mm-link, framing included) handed over at ``start_ms`` to
        an idle link have left (ms)."""
        return self._deliver(start_ms, bits / 8.0, 0.0)[0]

    def send(self, now_ms: float, bits: float) -> float:
        """``finish`` behind the bytes this link already carries; advances the stream (ms)."""
        end, self.position = self._deliver(now_ms, bits / 8.0, self.position)
        return end


class RandomCapacity:
    """Piecewise-constant capacity redrawn every ``interval_ms`` from a lognormal of mean
    ``mean_mbps`` and coefficient of variation ``cv``; drawn lazily in order, so the curve is a
    pure function of the generator's seed."""

    CHUNK = 256

    def __init__(self, mean_mbps: float, cv: float, interval_ms: float, rng: np.random.Generator):
        self.sigma = math.sqrt(math.log1p(cv * cv))
        self.mu = math.log(mean_mbps * 1000.0) - self.sigma**2 / 2.0  # of bits/ms
        self.interval, self.rng = interval_ms, rng
        self.rates: list[float] = []
        self.cum: list[float] = [0.0]

    def _extend(self) -> None:
        new = self.rng.lognormal(self.mu, self.sigma, self.CHUNK)
        base = self.cum[-1]
        self.rates.extend(new.tolist())
        self.cum.extend((base + np.cumsum(new * self.interval)).tolist())

    def finish(self, start_ms: float, bits: float) -> float:
        """End of serialising ``bits`` started at ``start_ms`` (ms)."""
        if bits <= 0:
            return start_ms
        i = int(start_ms // self.interval)
        while len(self.rates) <= i:
            self._extend()
        target = self.cum[i] + self.rates[i] * (start_ms - i * self.interval) + bits
        while self.cum[-1] < target:
            self._extend()
        j = bisect_left(self.cum, target)
        if self.cum[j] <= target:
            return j * self.interval
        return (j - 1) * self.interval + (target - self.cum[j - 1]) / self.rates[j - 1]


# --------------------------------------------------------------------------------------------
# importers


def load_trace(path: str | os.PathLike, fmt: str, field: str) -> "CapacityTable | OpportunityTrace":
    """Read a capacity trace of format ``fmt`` ('mahimahi' | 'pensieve' | 'canonical').
    Errors (``TraceFormatError``) start with ``field`` (e.g. 'network.uplink_trace') and name
    the file."""
    readers = {"mahimahi": read_mahimahi, "pensieve": read_pensieve, "canonical": read_canonical}
    if fmt not in readers:
        raise TraceFormatError(
            f"network.trace_format: unknown format {fmt!r}, expected one of {sorted(readers)}"
        )
    return readers[fmt](path, field)


def _read_lines(path: str | os.PathLike, field: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise TraceFormatError(f"{field}: {path}: the trace file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{field}: {path}: cannot read the trace ({exc})") from exc
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise TraceFormatError(f"{field}: {path}: the trace is empty")
    return lines


def _bad(field: str, path, lineno: int, expected: str, got: str) -> TraceFormatError:
    return TraceFormatError(f"{field}: {path}: line {lineno}: expected {expected}, got {got!r}")


def read_mahimahi(path: str | os.PathLike, field: str) -> OpportunityTrace:
    """Import a Mahimahi packet-delivery trace (one opportunity per line)."""
    lines = _read_lines(path, field)
    ts = _parse_ints(lines, field, path)
    if ts[-1] <= 0:
        raise _bad(field, path, lines[-1][0], "a last timestamp > 0 ms (the period)", lines[-1][1])
    return OpportunityTrace(ts, MAHIMAHI_OPPORTUNITY_BYTES, f"{field}: {path}")


def _parse_ints(lines: list[tuple[int, str]], field: str, path) -> np.ndarray:
    try:
        ts = np.array([s for _, s in lines], dtype=np.int64)
    except (ValueError, OverflowError):
        for n, s in lines:
            if not s.isdigit():
                raise _bad(field, path, n, "an integer timestamp in ms", s) from None
        raise
    drops = np.flatnonzero(np.diff(ts) < 0)
    if len(drops):
        n, s = lines[drops[0] + 1]
        raise _bad(field, path, n, f"a timestamp >= {ts[drops[0]]} (non-decreasing)", s)
    return ts


def read_pensieve(path: str | os.PathLike, field: str) -> CapacityTable:
    """Import a Pensieve cooked trace (``seconds Mbps`` per line)."""
    lines = _read_lines(path, field)
    rows = []
    for n, s in lines:
        parts = s.split()
        try:
            if len(parts) != 2:
                raise ValueError
            rows.append((float(parts[0]) * 1000.0, float(parts[1])))
        except ValueError:
            raise _bad(field, path, n, "two numbers 'seconds Mbps'", s) from None
    return _table_from_rows(rows, field, path, [n for n, _ in lines])


def read_canonical(path: str | os.PathLike, field: str) -> CapacityTable:
    """Import a canonical ``t_ms,mbps`` CSV (header required)."""
    lines = _read_lines(path, field)
    n0, head = lines[0]
    if head.replace(" ", "") != "t_ms,mbps":
        raise _bad(field, path, n0, "the header 't_ms,mbps'", head)
    rows = []
    for n, s in lines[1:]:
        try:
            t, r = s.split(",")
            rows.append((float(t), float(r)))
        except ValueError:
            raise _bad(field, path, n, "'t_ms,mbps' numbers", s) from None
    if not rows:
        raise TraceFormatError(f"{field}: {path}: the trace has a header but no rows")
    return _table_from_rows(rows, field, path, [n for n, _ in lines[1:]])


def _table_from_rows(rows, field: str, path, linenos: list[int]) -> CapacityTable:
    t = np.array([r[0] for r in rows])
    mbps = np.array([r[1] for r in rows])
    for i in range(len(rows)):
        if not (math.isfinite(mbps[i]) and mbps[i] >= 0):
            raise _bad(field, path, linenos[i], "a finite rate >= 0 Mbps", str(rows[i][1]))
        if i and not t[i] > t[i - 1]:
            raise _bad(field, path, linenos[i], f"a time after {t[i - 1]:g} ms", str(rows[i][0]))
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1000.0
    edges = np.append(t - t[0], t[-1] - t[0] + step)
    table = CapacityTable(edges, mbps, f"{field}: {path}")
    if table.total_bits <= 0:
        raise TraceFormatError(f"{field}: {path}: the trace carries no bytes")
    return table


def write_canonical(table: "CapacityTable | OpportunityTrace", path: str | os.PathLike) -> None:
    """Write ``table`` as a canonical ``t_ms,mbps`` CSV (the final edge is implied by the median
    row spacing on reading, so write uniform tables to round-trip exactly). A Mahimahi trace is
    written as its 1-ms fluid view (``OpportunityTrace.table``)."""
    if isinstance(table, OpportunityTrace):
        table = table.table()
    with open(path, "w", encoding="utf-8") as f:
        f.write("t_ms,mbps\n")
        for t, r in zip(table.edges_ms[:-1].tolist(), table.mbps.tolist()):
            f.write(f"{t!r},{r!r}\n")


LinkTrace = CapacityTable | OpportunityTrace  # what a trace file becomes


def link_tables(net) -> tuple[LinkTrace, LinkTrace] | None:
    """Uplink and downlink traces of a ``capacity: trace`` NetworkConfig (None otherwise),
    rescaled to ``uplink_mbps`` / ``downlink_mbps`` where given. Paths are opened as given (the
    scenario loader has already resolved a file's relative paths against its folder)."""
    if net.capacity != "trace":
        return None
    up = load_trace(net.uplink_trace, net.trace_format, "network.uplink_trace")
    down = load_trace(net.downlink_trace, net.trace_format, "network.downlink_trace")
    if net.uplink_mbps is not None:
        up = up.rescaled(net.uplink_mbps)
    if net.downlink_mbps is not None:
        down = down.rescaled(net.downlink_mbps)
    return up, down
