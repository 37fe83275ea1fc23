"""Decoded traces shipped inside a model set (``<checkpoints>/traces``): which a scenario needs,
which are missing or stale, and writing them (the runner only ever reads them)."""

from __future__ import annotations

from pathlib import Path

from ciarsim.runner.run import decode_jobs, decode_task, plan_jobs
from ciarsim.runner.trace_cache import TraceCache, shipped_dir
from ciarsim.scenario.schema import Scenario
from ciarsim.trace import TraceSet


def needed_keys(scenario: Scenario) -> list[str]:
    """The trace keys a run of ``scenario`` decodes (every point and candidate), sorted."""
    _, jobs = plan_jobs(scenario, Path("/nonexistent"))
    return sorted({j.trace_key for j in decode_jobs(jobs)})


def shipped_status(scenario: Scenario) -> tuple[list[str], list[Path]]:
    """(keys the scenario needs that its model set does not ship, shipped files it does not need)."""
    folder, keys = shipped_dir(scenario.models.checkpoints), needed_keys(scenario)
    have = {p.stem: p for p in folder.glob("*.npz")} if folder.is_dir() else {}
    return [k for k in keys if k not in have], sorted(p for k, p in have.items() if k not in keys)


def ship_traces(scenario: Scenario, cache_dir: Path, workers: int = 1) -> tuple[list[Path], list[Path]]:
    """Decode what ``scenario`` needs into ``cache_dir`` (reusing what is there), copy it compressed
    into the model set's ``traces/`` folder and delete the shipped files it no longer needs.
    Returns (written, removed)."""
    from ciarsim.runner.executors import LocalExecutor, PoolExecutor  # noqa: PLC0415

    _, jobs = plan_jobs(scenario, Path("/nonexistent"))
    first = {}
    for j in decode_jobs(jobs):
        first.setdefault(j.trace_key, j)
    folder = shipped_dir(scenario.models.checkpoints)
    new = {k: j for k, j in first.items() if not (folder / f"{k}.npz").exists()}  # a key names its content
    cache = TraceCache(cache_dir)
    todo = [j for j in new.values() if not cache.path(j.trace_key).exists()]
    executor = PoolExecutor(workers) if workers > 1 else LocalExecutor()
    executor.map(decode_task, todo, (str(cache_dir), None), lambda j: print(f"decoded {j.label}", flush=True))
    written = []
    for key in sorted(new):
        TraceSet.load(cache.path(key)).save(folder / f"{key}.npz", compress=True)
        written.append(folder / f"{key}.npz")
    _, stale = shipped_status(scenario)
    for path in stale:
        path.unlink()
    return written, stale
