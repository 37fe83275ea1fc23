"""One capacity probe: replay a policy's (tiled) traces at one load and judge the latency SLO.

Images that start in the first or last ``trim`` fraction of the run (warm-up: an empty queue;
cool-down: a draining one) are left out. The percentile's 95% interval comes from order
statistics (ranks ``n q +- 1.96 sqrt(n q (1 - q))``), which treats the kept images as
independent: optimistic under queueing correlation, reported so that an unstable estimate is
visible. Limit: a finite run bounds the queue, so past the GPU's saturation its percentile stays
finite (at most about the images' total GPU work); an SLO looser than that bound is met at any
rate. Keep ``images x GPU-seconds per image / max_batch`` well above the limit (``--images``).
``utilization`` (Poisson: rate x GPU seconds per image) is the GPU's busy fraction; with
continuous batching a busy fraction of 1 is not by itself unstable. A probe stops as soon as its percentile is CERTAIN to exceed the limit
(``ciarsim.sim.guard``); it then reports a lower bound of the percentile (each unfinished image
at its elapsed time, each unstarted one at 0; under a closed loop the ``2 cut`` largest values
dropped, as trimming might) and no upper bound. Units: ms, images/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ciarsim.scenario.schema import ArrivalConfig, Scenario
from ciarsim.trace import TraceSet


@dataclass(frozen=True)
class Probe:
    """One replay at one load: the SLO percentile, its 95% interval, images kept; ``images``
    replayed, ``stopped`` when cut short (a certain miss; ``latency_ms`` is then a lower bound
    and ``ci_high_ms`` NaN), ``gpu_s`` the mean cloud GPU seconds per finished image."""

    load: float
    latency_ms: float
    ci_low_ms: float
    ci_high_ms: float
    kept: int
    meets: bool
    images: int = 0
    stopped: bool = False
    gpu_s: float = 0.0
    mean_ms: float = 0.0
    utilization: float = math.nan  # Poisson: rate x GPU seconds per image (the GPU's busy fraction)


def percentile_ci(latency_ms: np.ndarray, q: float) -> tuple[float, float, float]:
    """(percentile, low, high) of ``latency_ms`` at ``q`` percent: the estimate and a 95%
    order-statistic interval (ms)."""
    x = np.sort(np.asarray(latency_ms, dtype=np.float64))
    n, p = len(x), q / 100.0
    half = 1.96 * math.sqrt(n * p * (1.0 - p))
    lo = int(max(math.floor(n * p - half), 0))
    hi = int(min(math.ceil(n * p + half), n - 1))
    return float(np.percentile(x, q)), float(x[lo]), float(x[hi])


def tile(traces: TraceSet, n: int) -> TraceSet:
    """``n`` images: the set's images repeated in order, renumbered 0..n-1."""
    images = [replace(traces.image(k % len(traces)), image=k) for k in range(n)]
    return TraceSet.from_images(images, traces.meta)


def head(traces: TraceSet, n: int) -> TraceSet:
    """The first ``n`` images of a tiled set (the short probes of the bracketing phase)."""
    if n >= len(traces):
        return traces
    return TraceSet.from_images([traces.image(k) for k in range(n)], traces.meta)


def measure(traces: TraceSet, scenario: Scenario, label: str, kind: str, load: float,
            q: float, limit_ms: float, trim: float = 0.1, early_stop: bool = True) -> Probe:  # fmt: skip
    """Replay ``traces`` (already tiled) at ``load`` (``kind`` 'poisson': images/s;
    'closed_loop': devices) and judge ``q``-th percentile <= ``limit_ms`` on the images outside
    warm-up and cool-down; ``early_stop``: stop once a miss is certain."""
    from ciarsim.scenario.sweep import replication_seed  # noqa: PLC0415
    from ciarsim.sim.world import World  # noqa: PLC0415

    think = scenario.workload.arrival.think_time_ms
    arrival = (ArrivalConfig(kind="poisson", rate_per_s=load) if kind == "poisson"
               else ArrivalConfig(kind="closed_loop", devices=int(load), think_time_ms=think))  # fmt: skip
    n = len(traces)
    workload = scenario.workload.model_copy(update={"images": n, "arrival": arrival})
    cut = int(n * trim)
    world = World(
        workload=workload, models=scenario.models, network=scenario.network,
        seed=replication_seed(scenario.seed, 0), replication=0, policy=label,
        record_segments=False, stop_above=(q, limit_ms, cut) if early_stop else None,
        population=scenario.population,
    )  # fmt: skip
    rec = world.run(traces)
    df = rec.images
    gpu_s = float(df["cloud_gpu_s"].mean()) if len(df) else 0.0
    mean_ms = float(df["latency_ms"].mean()) if len(df) else 0.0
    if rec.meta.get("cut_short"):
        low = _lower_bound(world.guard, float(world.env.now), q, cut, kind != "closed_loop")
        return Probe(load, max(low, limit_ms), max(low, limit_ms), math.nan, n - 2 * cut, False,
                     n, True, gpu_s, mean_ms)  # fmt: skip
    df = df.sort_values("start_ms", kind="stable")
    kept = df["latency_ms"].to_numpy()[cut:len(df) - cut]
    est, lo, hi = percentile_ci(kept, q)
    rho = load * gpu_s if kind == "poisson" else math.nan  # the GPU's busy fraction
    return Probe(load, est, lo, hi, len(kept), est <= limit_ms, n, False, gpu_s, mean_ms, rho)


def _lower_bound(guard, now_ms: float, q: float, cut: int, ordered: bool) -> float:
    """A lower bound of the kept percentile of a stopped replay (ms): finished images at their
    latency, running ones at their elapsed time, unstarted ones at 0."""
    n = guard.n
    lat = np.zeros(n)
    started = np.isfinite(guard.start_ms)
    lat[started] = now_ms - guard.start_ms[started]  # running: elapsed so far
    done = ~guard.running & started
    lat[done] = guard.latency_ms[done]
    if ordered:
        kept = lat[cut:n - cut]
    else:  # trimming (by start order, unknown here) might drop the largest values
        kept = np.sort(lat)[:n - 2 * cut]
    return float(np.percentile(kept, q))
