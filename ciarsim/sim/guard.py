"""Early stop of a replay whose latency percentile is CERTAIN to miss a limit (capacity probes).

A capacity probe judges ``q``-th percentile of the latency of the images it keeps (all but the
``cut`` earliest- and ``cut`` latest-starting of ``n``) against ``limit_ms``. With the kept
latencies sorted ``x_0 <= ... <= x_{K-1}`` and the percentile interpolated linearly between
``x_f`` and ``x_{f+1}``, ``f = floor(q/100 (K - 1))`` (numpy's default), the percentile exceeds
the limit as soon as ``x_f`` does, i.e. as soon as ``K - f`` kept images are known to take longer
than ``limit_ms``. An image is known to when it finished over the limit, or when it is still
running ``limit_ms`` after its start. The rule is deterministic (no statistical error): a
stopped replay would have missed the limit had it run to the end.

Which images are kept: ``ordered`` (Poisson arrivals: images start in position order) keeps
positions ``cut .. n - cut - 1``; otherwise (closed loop: start order is known only at the end)
any image may be trimmed, so ``2 cut`` more over-limit images are required.

The guard is driven by the world (``start``/``finish`` per image); it adds no events, so a replay
it does not stop is identical to one without it. Units: ms.
"""

from __future__ import annotations

import math

import numpy as np


class PercentileGuard:
    """Stops a replay (its ``stopped`` event fires) once the kept ``q``-th latency percentile is
    certainly above ``limit_ms``, or when all ``n`` images have finished."""

    def __init__(self, env, n: int, cut: int, q: float, limit_ms: float, ordered: bool):
        self.env, self.n, self.cut, self.limit_ms, self.ordered = env, n, cut, limit_ms, ordered
        kept = n - 2 * cut
        self.need = kept - math.floor(q / 100.0 * (kept - 1)) + (0 if ordered else 2 * cut)
        self.start_ms = np.full(n, np.inf)
        self.running = np.zeros(n, dtype=bool)
        self.latency_ms = np.full(n, np.nan)  # of the finished images
        self.mask = np.zeros(n, dtype=bool)
        self.mask[cut:n - cut] = True
        if not ordered:
            self.mask[:] = True
        self.over_done = 0  # kept images finished over the limit
        self.finished = 0
        self.next_check = 0.0
        self.stopped = env.event()
        self.cut_short = False  # True when stopped before every image finished

    def start(self, pos: int, now_ms: float) -> None:
        """Image ``pos`` starts at ``now_ms``."""
        self.start_ms[pos] = now_ms
        self.running[pos] = True
        self._maybe_check(now_ms)

    def finish(self, pos: int, latency_ms: float) -> None:
        """Image ``pos`` finished with ``latency_ms``."""
        self.running[pos] = False
        self.latency_ms[pos] = latency_ms
        self.finished += 1
        if latency_ms > self.limit_ms and self.mask[pos]:
            self.over_done += 1
        if self.finished == self.n:
            self._stop(False)
        elif self.over_done >= self.need:
            self._stop(True)
        else:
            self._maybe_check(self.start_ms[pos] + latency_ms)

    def over_now(self, now_ms: float) -> int:
        """Kept images known to exceed the limit at ``now_ms``: finished over it, or running
        for longer than it."""
        late = self.running & self.mask & (self.start_ms < now_ms - self.limit_ms)
        return self.over_done + int(late.sum())

    def _maybe_check(self, now_ms: float) -> None:
        """Count the running images at most every half limit of simulated time."""
        if now_ms < self.next_check or self.stopped.triggered:
            return
        self.next_check = now_ms + self.limit_ms / 2
        if self.over_now(now_ms) >= self.need:
            self._stop(True)

    def _stop(self, early: bool) -> None:
        if not self.stopped.triggered:
            self.cut_short = early
            self.stopped.succeed()
