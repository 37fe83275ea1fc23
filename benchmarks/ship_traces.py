"""Ship the decode traces of the README's first command inside the default model set.

`ciarsim run scenarios/4g.yaml` on a fresh clone would otherwise spend ~3 minutes decoding 13
policies x 64 images before the first result. The runner reads a model set's ``traces/`` folder
when its own cache lacks a key (``ciarsim.runner.trace_cache``), and a key matches only for the same
models, prompts, policy settings, seed and decision-layer code, so a shipped trace is never used
for anything but what made it. This script decodes what is missing into the user cache, then
writes the scenario's trace sets (compressed) to ``models/shapes-256/traces/`` and removes files
no longer needed. ``--check`` only says whether the shipped set is complete and current (exit 1
if not); ``tests/runner/test_shipped_traces.py`` runs the same check, so a change to the decision
layer or the models that forgets to refresh them fails the suite.

    python benchmarks/ship_traces.py [--scenario scenarios/4g.yaml] [--workers 2] [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ciarsim.runner.ship import ship_traces, shipped_status
from ciarsim.scenario.loader import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="scenarios/4g.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=".cache/ciarsim/traces")
    ap.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    a = ap.parse_args()
    sc = load_scenario(a.scenario)
    if a.check:
        missing, stale = shipped_status(sc)
        print(f"missing {len(missing)}, stale {len(stale)}")
        sys.exit(1 if missing or stale else 0)
    written, removed = ship_traces(sc, Path(a.cache_dir), a.workers)
    print(f"shipped {len(written)} trace sets to {Path(sc.models.checkpoints) / 'traces'}; removed {len(removed)} stale")


if __name__ == "__main__":
    main()
