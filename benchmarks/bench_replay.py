"""Replay throughput of the SimPy world: simulated images per second on one core.

Workload: CIAR-shaped synthetic traces (``ciarsim.sim.synthetic``): 256 tokens, a cloud prefix
of 15 tokens (rho = 0.06), then device runs interrupted by 70 cloud verifications carrying the
interval features of the run (~30% of the tokens); a 4G-like constant link (11 Mbps up, 12 Mbps
down, 70 ms RTT); one phone (closed loop); LlamaGen-XL on an H100 (CUDA graphs) and
ciar-device-xl on a Snapdragon 8 Gen 3 NPU. ``--window W`` replays the pipelined shape instead
(the device drafts up to W tokens while each verification is in flight, then joins it; drafts
after a replaced token are wasted and redrafted: about 3 more ops per call).

Usage (from the repository root):
    python benchmarks/bench_replay.py [--images 400] [--repeats 5] [--window 0] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

from ciarsim.scenario.schema import ModelsConfig, NetworkConfig, WorkloadConfig
from ciarsim.sim.synthetic import ciar_like_traces
from ciarsim.sim.world import World

NETWORK = NetworkConfig(capacity="constant", uplink_mbps=11, downlink_mbps=12, rtt_ms=70)


def run_once(traces, *, segments: bool) -> tuple[float, int, World]:
    """Replay ``traces`` once; returns (wall seconds, SimPy events scheduled, the world)."""
    world = World(
        workload=WorkloadConfig(images=len(traces), token_grid=16), models=ModelsConfig(),
        network=NETWORK, seed=0, replication=0, policy="ciar-like", record_segments=segments,
    )  # fmt: skip
    t0 = time.perf_counter()
    world.run(traces)
    wall = time.perf_counter() - t0
    events = next(world.env._eid)  # SimPy's private event-id counter: events scheduled
    return wall, events, world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window", type=int, default=0, help="0: stop and wait; W: pipelined")
    ap.add_argument("--profile", action="store_true", help="cProfile one run, print the top 25")
    args = ap.parse_args()
    traces = ciar_like_traces(args.images, window=args.window)
    calls = traces.image(0).cloud_calls
    run_once(ciar_like_traces(4), segments=True)  # warm-up: fits and caches
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_once(traces, segments=True)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    print(f"images {args.images}, tokens 256, cloud calls/image {calls}, ops/image "
          f"{len(traces.ops) / len(traces):.0f}, window {args.window}, repeats {args.repeats}")
    for segments in (True, False):
        walls, events = [], 0
        for _ in range(args.repeats):
            wall, events, _ = run_once(traces, segments=segments)
            walls.append(wall)
        rate = args.images / statistics.median(walls)
        best = args.images / min(walls)
        print(
            f"segments={'on ' if segments else 'off'}: {rate:7.0f} images/s (median), "
            f"{best:7.0f} best; {events / args.images:.0f} SimPy events/image"
        )


if __name__ == "__main__":
    main()
