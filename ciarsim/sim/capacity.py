"""Link capacity over time: trace importers, the canonical table, and capacity curves.

Every capacity model is a curve with one method, ``finish(start_ms, bits) -> end_ms``: the
earliest time at which ``bits`` have been serialised when sending starts at ``start_ms``
(integrating a piecewise-constant capacity analytically, so one message costs O(log n)).

Trace formats (all become one canonical piecewise-constant ``CapacityTable``; traces loop):

- **mahimahi**: one line per 1500-byte delivery opportunity, integer ms timestamps, repeated
  timestamps for several packets in one ms, period = the last timestamp (Winstein et al., NSDI
  2013; mahimahi's ``LinkQueue``). An opportunity at ``t`` ms is spread over ``[t-1, t)`` and
  opportunities are summed into ``bin_ms`` bins, so total bytes are conserved exactly.
- **pensieve** (Mao et al., SIGCOMM 2017, "cooked" traces): ``seconds Mbps`` per line.
- **canonical**: CSV with header ``t_ms,mbps``.
For the last two each row's rate holds until the next row's time; the last row holds for the
median spacing of the rows (1 s if there is a single row). Times are shifted to start at 0.

Units: ms, bits, Mbps (1 Mbps = 1000 bits/ms).
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ciarsim.errors import TraceFormatError

MAHIMAHI_PACKET_BYTES = 1500


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


def load_trace(path: str | os.PathLike, fmt: str, field: str, bin_ms: int = 1) -> CapacityTable:
    """Read a capacity trace of format ``fmt`` ('mahimahi' | 'pensieve' | 'canonical').
    Errors (``TraceFormatError``) start with ``field`` (e.g. 'network.uplink_trace')."""
    readers = {"mahimahi": read_mahimahi, "pensieve": read_pensieve, "canonical": read_canonical}
    if fmt not in readers:
        raise TraceFormatError(
            f"network.trace_format: unknown format {fmt!r}, expected one of {sorted(readers)}"
        )
    if fmt == "mahimahi":
        return read_mahimahi(path, field, bin_ms)
    return readers[fmt](path, field)


def _read_lines(path: str | os.PathLike, field: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{field}: {path}: cannot read the trace ({exc})") from exc
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise TraceFormatError(f"{field}: {path}: the trace is empty")
    return lines


def _bad(field: str, path, lineno: int, expected: str, got: str) -> TraceFormatError:
    return TraceFormatError(f"{field}: {path}: line {lineno}: expected {expected}, got {got!r}")


def read_mahimahi(path: str | os.PathLike, field: str, bin_ms: int = 1) -> CapacityTable:
    """Import a Mahimahi packet-delivery trace into ``bin_ms``-ms bins of constant capacity."""
    lines = _read_lines(path, field)
    ts = _parse_ints(lines, field, path)
    if ts[-1] <= 0:
        raise _bad(field, path, lines[-1][0], "a last timestamp > 0 ms (the period)", lines[-1][1])
    period = int(ts[-1])
    edges = np.append(np.arange(0, period, bin_ms, dtype=np.float64), float(period))
    idx = np.maximum(ts - 1, 0) // bin_ms
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)
    bits = counts * MAHIMAHI_PACKET_BYTES * 8
    return CapacityTable(edges, bits / np.diff(edges) / 1000.0, f"{field}: {path}")


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


def write_canonical(table: CapacityTable, path: str | os.PathLike) -> None:
    """Write ``table`` as a canonical ``t_ms,mbps`` CSV (the final edge is implied by the median
    row spacing on reading, so write uniform tables to round-trip exactly)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("t_ms,mbps\n")
        for t, r in zip(table.edges_ms[:-1].tolist(), table.mbps.tolist()):
            f.write(f"{t!r},{r!r}\n")


def link_tables(net) -> tuple[CapacityTable, CapacityTable] | None:
    """Uplink and downlink tables of a ``capacity: trace`` NetworkConfig (None otherwise),
    rescaled to ``uplink_mbps`` / ``downlink_mbps`` where given. Relative paths are relative to
    the current working directory."""
    if net.capacity != "trace":
        return None
    up = load_trace(net.uplink_trace, net.trace_format, "network.uplink_trace")
    down = load_trace(net.downlink_trace, net.trace_format, "network.downlink_trace")
    if net.uplink_mbps is not None:
        up = up.rescaled(net.uplink_mbps)
    if net.downlink_mbps is not None:
        down = down.rescaled(net.downlink_mbps)
    return up, down
