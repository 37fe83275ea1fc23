"""CPU-time replay throughput of one source tree, for before/after comparisons on a busy machine.

    git archive <commit> ciarsim | tar -x -C /tmp/old
    python benchmarks/compare_replay_cpu.py /tmp/old     # then: python benchmarks/compare_replay_cpu.py .

Replays 400 synthetic CIAR-shaped images (``ciar_like_traces``) on a 4G-like constant link and
prints images per CPU-second (``time.thread_time``), timeline rows on and off, median and best of
five. Run the trees alternately: CPU time still moves with the machine's load.
"""

import sys
import time
from pathlib import Path

TREE = str(Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve())
sys.path.insert(0, TREE)

from ciarsim.scenario.schema import ModelsConfig, NetworkConfig, WorkloadConfig  # noqa: E402
from ciarsim.sim.synthetic import ciar_like_traces  # noqa: E402
from ciarsim.sim.world import simulate  # noqa: E402

NET = NetworkConfig(capacity="constant", uplink_mbps=11, downlink_mbps=12, rtt_ms=70)


def rate(traces, segments: bool) -> float:
    t = time.thread_time()
    simulate(traces, workload=WorkloadConfig(images=len(traces), token_grid=16),
             models=ModelsConfig(), network=NET, seed=0, replication=0, policy="ciar",
             record_segments=segments)  # fmt: skip
    return len(traces) / (time.thread_time() - t)


def main() -> None:
    traces = ciar_like_traces(400)
    rate(traces, True)  # warm-up: fits and caches
    for segments in (True, False):
        r = sorted(rate(traces, segments) for _ in range(5))
        print(f"{TREE} rows={'on' if segments else 'off'}: median {r[2]:.0f}, best {r[-1]:.0f} images/CPU-s")


if __name__ == "__main__":
    main()
