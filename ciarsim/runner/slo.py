"""Capacity at a latency SLO: per policy, the highest load whose latency percentile meets it.

Two loads: a Poisson arrival rate (images/s on the scenario's one cloud, each image on its own
phone) and a number of closed-loop devices (each running its images back to back with the
scenario's ``think_time_ms``). For each, ``search`` probes the unloaded floor, starts from the
load that would saturate the GPU at batch 1 (from the floor probe's GPU seconds per image),
brackets by doubling or halving and bisects with short probes (a quarter of the images), then
bisects to the tolerance with full probes; both ends of the answer are judged on full probes.
A probe (``ciarsim.runner.slo_probe``) replays the policy's trace set tiled to ``images``
images, trims warm-up and cool-down, reports the percentile with a 95% order-statistic interval,
and stops as soon as a miss is certain (``ciarsim.sim.guard``). A policy that meets the SLO at
``max_rate`` (no cloud bottleneck, e.g. device-only) is reported at that bound with
``bounded = False``.

Units: ms, images/s. Outputs of ``run_capacity``: ``capacity.csv`` (one row per point, policy and
load kind) and ``capacity_probes.csv`` (every probe), drawn by ``ciarsim.report.capacity``.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ciarsim.errors import ScenarioError
from ciarsim.runner import store
from ciarsim.runner.slo_probe import Probe, head, measure, percentile_ci, tile
from ciarsim.scenario.schema import Scenario
from ciarsim.trace import TraceSet

__all__ = ["Probe", "Slo", "Task", "capacity_for_scenario", "parse_slo", "percentile_ci",
           "run_capacity", "search", "tile"]  # fmt: skip

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


def search(probe: Callable[[float, bool], Probe], *, integer: bool, rel_tol: float = 0.05,
           max_load: float = 1024.0, min_load: float = 1 / 64,
           guess: Callable[[Probe], float] | None = None,
           coarse_tol: float = 0.25, max_probes: int = 40) -> tuple[float, bool, list[Probe]]:  # fmt: skip
    """Highest load meeting the SLO, assuming latency grows with load: (capacity, bounded,
    probes). ``probe(x, full)`` replays load ``x`` with the full image count (``full``) or the
    short one of the bracketing phase. ``integer``: loads are whole numbers >= 1 (devices),
    bisected to 1; else rates, bisected until high <= (1 + ``rel_tol``) low.

    1. the floor (``min_load``, or 1 device): unloaded; if it misses (confirmed with the full
       count), the capacity is 0;
    2. from ``guess(floor probe)`` (default: 4 x floor; at least 2 x floor) double or halve with short probes until
       the SLO changes side, then bisect (geometrically while high > 4 low) to ``coarse_tol``;
    3. bisect with full probes to ``rel_tol``; the two ends of the answer are always judged on
       full probes (an end judged only on a short probe is re-probed; if it flips, the bracket
       moves, short probes are no longer trusted, and the bisection goes on with full ones).
    After ``max_probes`` probes a flipping search stops at its highest load met on a full probe.
    ``bounded`` is False when ``max_load`` still meets the SLO (with the full count)."""
    probes: list[Probe] = []
    full_ok: dict[float, bool] = {}
    trust = [True]  # short probes are trusted until a full one contradicts one of them

    def ok(x: float, full: bool) -> bool:
        if x in full_ok:
            return full_ok[x]
        full = full or not trust[0]
        probes.append(probe(x, full))
        if full:
            full_ok[x] = probes[-1].meets
        return probes[-1].meets

    floor = 1.0 if integer else min_load
    fit = (lambda x: float(max(round(x), 1))) if integer else (lambda x: float(x))  # noqa: E731
    up = (lambda x, f: float(max(math.ceil(x * (1 + f)), x + 1))) if integer else (lambda x, f: x * (1 + f))  # noqa: E731,E501
    close = ((lambda lo, hi, f: hi - lo <= max(1.0, math.floor(f * lo))) if integer
             else (lambda lo, hi, f: hi <= (1 + f) * lo))  # fmt: skip

    first = probe(floor, False)
    probes.append(first)
    if not first.meets and not ok(floor, True):
        return 0.0, True, probes
    lo, hi = floor, None
    x = min(max(fit(guess(first) if guess else 4 * floor), fit(2 * floor)), max_load)
    if x > lo:  # double up from the guess until a miss, or halve down until a meet
        if ok(x, False):
            lo = x
            while hi is None and lo < max_load:
                x = min(fit(lo * 2), max_load)
                lo, hi = (x, None) if ok(x, False) else (lo, x)
        else:
            hi = x
            while True:
                x = fit(hi / 2)
                if x <= lo:
                    break
                if ok(x, False):
                    lo = x
                    break
                hi = x
    if hi is None:  # max_load met on a short probe: confirm with the full count
        if ok(max_load, True):
            return max_load, False, probes
        hi = max_load
    while True:
        for tol, full in ((coarse_tol, False), (rel_tol, True)):
            while not close(lo, hi, tol):
                mid = fit(math.sqrt(lo * hi) if hi > 4 * lo else (lo + hi) / 2)
                mid = min(max(mid, lo + (1 if integer else 0)), hi - (1 if integer else 0))
                if mid in (lo, hi):
                    break
                lo, hi = (mid, hi) if ok(mid, full) else (lo, mid)
        if not ok(lo, True):  # the low end flipped on the full count: look lower, full only
            trust[0], hi = False, lo
            met = [x for x, m in full_ok.items() if m and x < lo]
            if lo <= floor or len(probes) >= max_probes:
                return (max(met) if met else 0.0), True, probes
            lo = max(met) if met else max(fit(lo / 2), floor)
            continue
        if ok(hi, True):  # the high end flipped: look higher, full only
            trust[0], lo = False, hi
            if hi >= max_load or len(probes) >= max_probes:
                return hi, hi < max_load, probes
            hi = min(up(hi, coarse_tol), max_load)
            continue
        return lo, True, probes


@dataclass(frozen=True)
class Task:
    """One (point, policy, load kind) search: everything a worker process needs.
    ``short_images``: images per probe of the bracketing phase (0: ``images // 4``, at least
    100); ``early_stop``: cut a probe short once its miss is certain."""

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
    short_images: int = 0
    early_stop: bool = True


def run_task(task: Task) -> tuple[dict, list[dict]]:
    """Search one task: its capacity.csv row and its probe rows."""
    full = tile(TraceSet.load(task.trace_path), task.images)
    short = head(full, task.short_images or max(task.images // 4, min(100, task.images)))
    integer = task.kind == "closed_loop"
    think = task.scenario.workload.arrival.think_time_ms

    def probe(x: float, use_full: bool) -> Probe:
        return measure(full if use_full else short, task.scenario, task.label, task.kind, x,
                       task.slo.percentile, task.slo.limit_ms, task.trim, task.early_stop)  # fmt: skip

    def guess(first: Probe) -> float:  # the load that saturates the GPU at batch 1
        if first.gpu_s <= 0:
            return task.max_rate if not integer else 4096.0
        return (first.mean_ms + think) / 1000.0 / first.gpu_s if integer else 1.0 / first.gpu_s

    cap, bounded, probes = search(probe, integer=integer, rel_tol=task.rel_tol, guess=guess,
                                  max_load=task.max_rate if not integer else 4096.0)  # fmt: skip
    at = [p for p in probes if p.load == cap and p.images == task.images]
    best = at[-1] if at else None
    row = {
        "point": task.point, "policy": task.label, "load": task.kind, "slo": str(task.slo),
        "capacity": cap, "unit": "devices" if integer else "images/s", "bounded": bounded,
        "latency_at_capacity_ms": best.latency_ms if best else np.nan,
        "ci_low_ms": best.ci_low_ms if best else np.nan,
        "ci_high_ms": best.ci_high_ms if best else np.nan,
        "images_kept": best.kept if best else 0, "probes": len(probes),
        "probes_stopped": sum(p.stopped for p in probes),
        "images_replayed": sum(p.images for p in probes),
        "think_time_ms": think if integer else np.nan,
    }  # fmt: skip
    rows = [{"point": task.point, "policy": task.label, "load": task.kind, "x": p.load,
             "images": p.images, "latency_ms": p.latency_ms, "ci_low_ms": p.ci_low_ms,
             "ci_high_ms": p.ci_high_ms, "images_kept": p.kept, "meets": p.meets,
             "stopped": p.stopped, "gpu_s_per_image": p.gpu_s,
             "utilization": p.utilization} for p in probes]  # fmt: skip
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
