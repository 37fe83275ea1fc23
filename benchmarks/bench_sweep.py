"""A 1,000-point network sweep: 8 policy settings x 125 network points, 64 images each.

Network grid: 5 RTTs x 5 uplink bandwidths x 5 loss rates (125 points) on the 4G scenario. The
first run (``--cold``) decodes each policy's traces once; the timed run reuses the trace cache
(warm) and recomputes every part (``force``), so it measures replay + storage for all 8,000
(point, policy) parts and 512,000 simulated images. Also reports what decoding per point would
cost instead of the cache (one decode per policy setting, measured, times the 125 points).

    python benchmarks/bench_sweep.py [--workers 2] [--images 64]

Target (issue "Experiments at scale"): <= 5 minutes warm on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from ciarsim.runner.executors import PoolExecutor
from ciarsim.runner.run import run_scenario
from ciarsim.scenario import load_scenario

POLICIES = [
    "{name: base}", "{name: device_only}", "{name: sd, gamma: 4}", "{name: code_split}",
    "{name: gated, signal: entropy}", "{name: gated, signal: max_prob}", "{name: ciar}",
    "{name: oracle}",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--out", default="/tmp/ciarsim-bench-sweep")
    ap.add_argument("--cache", default=".cache/ciarsim/traces")
    ap.add_argument("--set", action="append", default=[], help="extra scenario override, e.g. network.tcp=none")
    a = ap.parse_args()
    overrides = [
        f"workload.images={a.images}",
        "policies=[" + ", ".join(POLICIES) + "]",
        "sweep={network.rtt_ms: [10, 40, 70, 120, 200], network.uplink_mbps: [1, 3, 10, 30, 100],"
        " network.loss_rate: [0.0, 0.001, 0.005, 0.01, 0.02]}",
        *a.set,
    ]
    sc = load_scenario(Path("scenarios/4g.yaml"), overrides)
    shutil.rmtree(a.out, ignore_errors=True)
    ex = PoolExecutor(a.workers)
    t0 = time.perf_counter()
    run_scenario(sc.model_copy(update={"sweep": {}}), a.out + "-decode", cache_dir=a.cache,
                 executor=ex)  # fmt: skip  (one point: decodes or finds the 8 trace sets)
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_scenario(sc, a.out, cache_dir=a.cache, executor=ex, force=True)
    t_warm = time.perf_counter() - t0
    n_parts = res.parts_computed
    print(f"machine: {os.cpu_count()} cores, workers={a.workers}, load avg {os.getloadavg()[0]:.1f}")
    print(f"points x policies = {n_parts} parts, {len(res.images)} image rows")
    print(f"first point (decode or cache hit for 8 settings): {t_decode:.1f} s")
    print(f"warm 1,000-point sweep: {t_warm:.1f} s ({1e3 * t_warm / n_parts:.1f} ms per part, "
          f"{len(res.images) / t_warm:,.0f} simulated images/s)")


if __name__ == "__main__":
    main()
