"""Benchmark: one capacity search (`ciarsim.runner.slo`) for 13 policies of scenarios/4g-crowded.yaml
with warm traces (decoding excluded).

The trace sets are synthetic CIAR-shaped stand-ins (``ciarsim.sim.synthetic``), 64 images each,
one per policy slot, from cloud-heavy (241 exchanges per image) to nearly device-only (1), so the
timing covers the same replay work per probe as real policies of that shape; no trained
checkpoints are needed. Usage (repo root):

    python benchmarks/bench_capacity.py --workers 2 --images 1000 --slo 'p95<=2000ms'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ciarsim.runner.slo import Task, parse_slo, run_capacity, without_arrival_sweep
from ciarsim.scenario.loader import load_scenario
from ciarsim.sim.synthetic import ciar_like_traces

CALLS = (241, 200, 150, 120, 100, 80, 70, 60, 50, 40, 30, 15, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--slo", default="p95<=2000ms")
    ap.add_argument("--load", default="poisson", choices=("poisson", "closed_loop"))
    args = ap.parse_args()
    sc = without_arrival_sweep(load_scenario(Path("scenarios/4g-crowded.yaml"), []))
    sc = sc.model_copy(update={"sweep": {}})
    slo = parse_slo(args.slo)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = []
        for calls in CALLS:
            path = Path(tmp) / f"calls{calls}.npz"
            ciar_like_traces(64, tokens=256, prefix=15, calls=calls).save(path)
            tasks.append(Task("p0", sc, f"calls{calls}", str(path), args.load, slo, args.images,
                              0.1, 0.05, 1024.0))  # fmt: skip
        started = time.perf_counter()
        table = run_capacity(tasks, Path(tmp) / "out", workers=args.workers)
        wall = time.perf_counter() - started
    print(table[["policy", "capacity", "latency_at_capacity_ms", "ci_low_ms", "ci_high_ms",
                 "probes", "seconds"]].to_string(index=False))  # fmt: skip
    print(f"wall {wall:.1f} s for {len(tasks)} searches, {int(table.probes.sum())} probes of "
          f"{args.images} images, {args.workers} workers")


if __name__ == "__main__":
    main()
