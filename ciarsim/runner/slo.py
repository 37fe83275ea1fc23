"""Capacity at a latency SLO: per policy, the highest load whose latency percentile meets it.

Two loads: a Poisson arrival rate (images/s on the scenario's one cloud, each image on its own
phone) and a number of closed-loop devices (each running its images back to back with the
scenario's ``think_time_ms``). For each, ``search`` brackets the capacity by doubling (or halving)
from a start value, then bisects: the rate to a relative tolerance, the devices to one device.
Each probe replays ``images`` images (the policy's trace set tiled, ids renumbered) in a fresh
world; images that start in the first ``trim`` or last ``trim`` fraction of the run (warm-up and
cool-down: an empty, then draining, queue) are left out of the percentile. The percentile's 95%
interval comes from order statistics (the ranks ``n q +- 1.96 sqrt(n q (1 - q))``), which treats
the kept images as independent: an optimistic interval under queueing correlation, reported so
that an unstable estimate is visible. A policy that meets the SLO at ``max_rate`` (no cloud
bottleneck, e.g. device-only) is reported at that bound with ``bounded = False``.

Units: ms, images/s. Outputs of ``run_capacity``: ``capacity.csv`` (one row per point, policy and
load kind) and ``capacity_probes.csv`` (every probe), drawn by ``ciarsim.report.capacity``.
"""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ciarsim.errors import ScenarioError
from ciarsim.runner import store
from ciarsim.scenario.schema import ArrivalConfig, Scenario
from ciarsim.trace import TraceSet

_SLO = re.compile(r"^\s*p(\d{1,2}(?:\.\d+)?)\s*<=\s*([0-9.]+)\s*(ms|s)\s*$")


@dataclass(frozen=True)
class Slo:
    """``percentile`` (0-100) of the latency must be at most ``limit_ms``."""

    percentile: float
    limit_ms: float

    def __str__(self) -> str:
        return f"p{self.percentile:g}<={self.limit_ms:g}ms"


def parse_slo(text: str) -> Slo:
    """``'p95<=2000ms'`` or ``'p99<=1.5s'`` -> ``Slo``; raises ScenarioError naming the form."""
    m = _SLO.match(text)
    if not m or not 0 < float(m.group(1)) < 100:
        raise ScenarioError(f"--slo: expected 'pNN<=LIMITms' or 'pNN<=LIMITs' with 0 < NN < 100, "
                            f"got {text!r}")  # fmt: skip
    limit = float(m.group(2)) * (1000.0 if m.group(3) == "s" else 1.0)
    return Slo(float(m.group(1)), limit)


@dataclass(frozen=True)
class Probe:
    """One replay at one load: the SLO percentile, its 95% interval, images kept."""

    load: float
    latency_ms: float
    ci_low_ms: float
    ci_high_ms: float
    kept: int
    meets: bool


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


def measure(traces: TraceSet, scenario: Scenario, label: str, kind: str, load: float, slo: Slo,
            trim: float = 0.1) -> Probe:  # fmt: skip
    """Replay ``traces`` (already tiled) at ``load`` (``kind`` 'poisson': images/s;
    'closed_loop': devices) and judge the SLO on the images outside warm-up and cool-down."""
    from ciarsim.scenario.sweep import replication_seed  # noqa: PLC0415
    from ciarsim.sim.world import simulate  # noqa: PLC0415

    think = scenario.workload.arrival.think_time_ms
    arrival = (ArrivalConfig(kind="poisson", rate_per_s=load) if kind == "poisson"
               else ArrivalConfig(kind="closed_loop", devices=int(load), think_time_ms=think))  # fmt: skip
    workload = scenario.workload.model_copy(update={"images": len(traces), "arrival": arrival})
    rec = simulate(
        traces, workload=workload, models=scenario.models, network=scenario.network,
        seed=replication_seed(scenario.seed, 0), replication=0, policy=label,
        record_segments=False,
    )  # fmt: skip
    df = rec.images.sort_values("start_ms", kind="stable")
    cut = int(len(df) * trim)
    kept = df["latency_ms"].to_numpy()[cut:len(df) - cut]
    est, lo, hi = percentile_ci(kept, slo.percentile)
    return Probe(load, est, lo, hi, len(kept), est <= slo.limit_ms)


def search(probe: Callable[[float], Probe], *, start: float, integer: bool, rel_tol: float = 0.05,
           max_load: float = 1024.0, min_load: float = 1 / 64) -> tuple[float, bool, list[Probe]]:  # fmt: skip
    """Highest load meeting the SLO, assuming latency grows with load: (capacity, bounded,
    probes). ``integer``: loads are whole numbers >= 1 (devices), bisected to 1; else rates,
    bisected until (high - low) <= ``rel_tol`` x low. Capacity 0 if even ``min_load`` (1 device)
    fails; ``bounded`` False when ``max_load`` still meets it."""
    probes: list[Probe] = []

    def ok(x: float) -> bool:
        probes.append(probe(x))
        return probes[-1].meets

    floor = 1.0 if integer else min_load
    x = max(round(start) if integer else start, floor)
    if ok(x):
        lo = x
        while True:
            hi = min(lo * 2, max_load)
            if hi == lo:
                return lo, False, probes
            if not ok(hi):
                break
            lo = hi
    else:
        hi = x
        while True:
            lo = max(math.floor(hi / 2) if integer else hi / 2, floor)
            if lo == hi:
                return 0.0, True, probes
            if ok(lo):
                break
            hi = lo
    while (hi - lo > 1) if integer else (hi - lo > rel_tol * lo):
        mid = (lo + hi) // 2 if integer else (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo, True, probes


@dataclass(frozen=True)
class Task:
    """One (point, policy, load kind) search: everything a worker process needs."""

    point: str
    scenario: Scenario
    label: str
    trace_path: str
    kind: str
    slo: Slo
    images: int
    trim: float
    rel_tol: float
    max_rate: float


def run_task(task: Task) -> tuple[dict, list[dict]]:
    """Search one task: its capacity.csv row and its probe rows."""
    started = time.perf_counter()
    traces = tile(TraceSet.load(task.trace_path), task.images)
    integer = task.kind == "closed_loop"
    cap, bounded, probes = search(
        lambda x: measure(traces, task.scenario, task.label, task.kind, x, task.slo, task.trim),
        start=4.0 if integer else 1.0, integer=integer, rel_tol=task.rel_tol,
        max_load=task.max_rate if not integer else 4096.0,
    )  # fmt: skip
    at = [p for p in probes if p.load == cap]
    best = at[-1] if at else None
    row = {
        "point": task.point, "policy": task.label, "load": task.kind, "slo": str(task.slo),
        "capacity": cap, "unit": "devices" if integer else "images/s", "bounded": bounded,
        "latency_at_capacity_ms": best.latency_ms if best else np.nan,
        "ci_low_ms": best.ci_low_ms if best else np.nan,
        "ci_high_ms": best.ci_high_ms if best else np.nan,
        "images_kept": best.kept if best else 0, "probes": len(probes),
        "think_time_ms": task.scenario.workload.arrival.think_time_ms if integer else np.nan,
        "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip
    rows = [{"point": task.point, "policy": task.label, "load": task.kind, "x": p.load,
             "latency_ms": p.latency_ms, "ci_low_ms": p.ci_low_ms, "ci_high_ms": p.ci_high_ms,
             "images_kept": p.kept, "meets": p.meets} for p in probes]  # fmt: skip
    return row, rows


def plan_tasks(scenario: Scenario, trace_paths: dict[tuple[str, str], str], slo: Slo, *,
               kinds: tuple[str, ...], images: int, trim: float, rel_tol: float,
               max_rate: float) -> list[Task]:  # fmt: skip
    """One task per (sweep point, policy, kind); ``trace_paths[(point key, label)]`` is the
    policy's cached trace file at that point."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415

    tasks = []
    for pt in expand(without_arrival_sweep(scenario)):
        for policy in pt.scenario.policies:
            path = trace_paths[(pt.key, policy.display)]
            for kind in kinds:
                tasks.append(Task(pt.key, pt.scenario, policy.display, path, kind, slo, images,
                                  trim, rel_tol, max_rate))  # fmt: skip
    return tasks


def without_arrival_sweep(scenario: Scenario) -> Scenario:
    """The scenario with sweeps over ``workload.arrival.*`` dropped (the search sets the load);
    other sweeps (e.g. ``models.cloud.max_batch``) stay: one capacity per point."""
    sweep = {k: v for k, v in scenario.sweep.items() if not k.startswith("workload.arrival.")}
    zipped = [g for g in ({k: v for k, v in grp.items() if not k.startswith("workload.arrival.")}
                          for grp in scenario.zip) if g]  # fmt: skip
    return scenario.model_copy(update={"sweep": sweep, "zip": zipped})


def run_capacity(tasks: list[Task], out_dir: str | Path, workers: int = 1,
                 progress: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:  # fmt: skip
    """Run every task (``workers`` processes; 1: in this process), write ``capacity.csv`` and
    ``capacity_probes.csv`` to ``out_dir``; returns the capacity table."""
    out_dir = Path(out_dir)
    results: list = [None] * len(tasks)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_task, t) for t in tasks]
            for i, fut in enumerate(futures):
                results[i] = fut.result()
                if progress:
                    progress(i + 1, len(tasks), f"{tasks[i].label} ({tasks[i].kind})")
    else:
        for i, t in enumerate(tasks):
            results[i] = run_task(t)
            if progress:
                progress(i + 1, len(tasks), f"{t.label} ({t.kind})")
    table = pd.DataFrame([r for r, _ in results])
    probes = pd.DataFrame([p for _, ps in results for p in ps])
    store.write_table(table, out_dir / "capacity.csv")
    store.write_table(probes, out_dir / "capacity_probes.csv")
    return table


def capacity_for_scenario(
    scenario: Scenario, slo: Slo, out_dir: str | Path, *,
    cache_dir: str | Path = ".cache/ciarsim/traces", kinds: tuple[str, ...] = ("poisson", "closed_loop"),
    images: int = 1000, trim: float = 0.1, rel_tol: float = 0.05, max_rate: float = 1024.0,
    workers: int = 1, decoder=None, progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Decode (or reuse from ``cache_dir``) each policy's traces at each sweep point (arrival
    sweeps dropped), then search every (point, policy, kind); writes ``capacity.csv`` and
    ``capacity_probes.csv`` to ``out_dir`` and returns the capacity table."""
    from ciarsim.runner.run import decode_task, model_cache, plan_jobs, preflight  # noqa: PLC0415
    from ciarsim.runner.trace_cache import TraceCache, shipped_dir  # noqa: PLC0415

    for kind in kinds:
        if kind not in ("poisson", "closed_loop"):
            raise ScenarioError(f"--load: expected 'poisson' or 'closed_loop', got {kind!r}")
    base = without_arrival_sweep(scenario)
    if decoder is None:
        preflight(base)
    _, jobs = plan_jobs(base, Path(out_dir))
    cache, paths, models = TraceCache(cache_dir, (shipped_dir(base.models.checkpoints),)), {}, model_cache()
    for job in jobs:
        if job.replication == 0:
            decode_task(job, str(cache_dir), decoder, models)
            paths[(job.point.key, job.label)] = str(cache.path(job.trace_key))
    tasks = plan_tasks(base, paths, slo, kinds=kinds, images=images, trim=trim, rel_tol=rel_tol,
                       max_rate=max_rate)  # fmt: skip
    return run_capacity(tasks, out_dir, workers, progress)
