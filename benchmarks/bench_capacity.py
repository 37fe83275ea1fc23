"""Benchmark: one capacity search (`ciarsim.runner.slo`) for the 13 policies of
scenarios/4g-crowded.yaml with warm traces, wall and CPU time (the machine is shared: CPU time
is what the search costs, wall time what a user waits).

Default: the scenario's real policies from the decode-trace cache (`--cache-dir`; a cold cache
is filled first, and that decode time is reported apart and excluded). `--synthetic`: 13
CIAR-shaped stand-ins (``ciarsim.sim.synthetic``, 64 images, 241 ... 1 exchanges per image) on
the same network and cloud, no checkpoints needed. `--no-early-stop` replays every probe fully
(the previous behaviour) for comparison. Usage (repo root):

    PYTHONPATH=. python benchmarks/bench_capacity.py --workers 2 --images 1000 --slo 'p95<=2000ms'
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ciarsim.runner.slo import Task, parse_slo, plan_tasks, run_capacity, without_arrival_sweep
from ciarsim.scenario.loader import load_scenario

CALLS = (241, 200, 150, 120, 100, 80, 70, 60, 50, 40, 30, 15, 1)
SCENARIO = Path("scenarios/4g-crowded.yaml")


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def real_tasks(sc, slo, args) -> list[Task]:
    """The scenario's policies from the trace cache (decoded first if cold: timed apart)."""
    from ciarsim.runner.run import decode_task, plan_jobs, preflight
    from ciarsim.runner.trace_cache import TraceCache

    preflight(sc)
    _, jobs = plan_jobs(sc, Path(tempfile.gettempdir()) / "bench-capacity-plan")
    cache, paths = TraceCache(args.cache_dir), {}
    t0, c0 = time.perf_counter(), cpu_s()
    for job in jobs:
        if job.replication == 0:
            decode_task(job, str(args.cache_dir), None)
            paths[(job.point.key, job.label)] = str(cache.path(job.trace_key))
    print(f"decode (excluded): wall {time.perf_counter() - t0:.1f} s, CPU {cpu_s() - c0:.1f} s")
    return plan_tasks(sc, paths, slo, kinds=(args.load,), images=args.images, trim=0.1,
                      rel_tol=0.05, max_rate=1024.0)  # fmt: skip


def synthetic_tasks(sc, slo, args, tmp: Path) -> list[Task]:
    """13 CIAR-shaped stand-ins, 241 ... 1 exchanges per image."""
    from ciarsim.sim.synthetic import ciar_like_traces

    tasks = []
    for calls in CALLS:
        path = tmp / f"calls{calls}.npz"
        ciar_like_traces(64, tokens=256, prefix=15, calls=calls).save(path)
        tasks.append(Task("p0", sc, f"calls{calls}", str(path), args.load, slo, args.images,
                          0.1, 0.05, 1024.0))  # fmt: skip
    return tasks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--slo", default="p95<=2000ms")
    ap.add_argument("--load", default="poisson", choices=("poisson", "closed_loop"))
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/ciarsim/traces"))
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--no-early-stop", action="store_true")
    args = ap.parse_args()
    sc = without_arrival_sweep(load_scenario(SCENARIO, [])).model_copy(update={"sweep": {}})
    slo = parse_slo(args.slo)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = synthetic_tasks(sc, slo, args, Path(tmp)) if args.synthetic else real_tasks(sc, slo, args)
        if args.no_early_stop:
            tasks = [replace(t, early_stop=False) for t in tasks]
        t0, c0 = time.perf_counter(), cpu_s()
        table = run_capacity(tasks, Path(tmp) / "out", workers=args.workers)
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    print(table[["policy", "capacity", "latency_at_capacity_ms", "ci_low_ms", "ci_high_ms",
                 "probes", "probes_stopped", "images_replayed"]].to_string(index=False))  # fmt: skip
    print(f"search: wall {wall:.1f} s, CPU {cpu:.1f} s for {len(tasks)} searches "
          f"({args.load}, {args.slo}), {int(table.probes.sum())} probes, "
          f"{int(table.images_replayed.sum())} images replayed, {args.images} images per full "
          f"probe, {args.workers} workers")


if __name__ == "__main__":
    main()
