"""``emulate_scenario``: replay a scenario's decode traces over a real TCP connection through the
shaped relay, next to the simulator's replay of the same images, and compare per-image latency.

For every sweep point: one emulation session (``ciarsim.emulate.session``) whose relay carries the
point's network; inside it one block per policy, each starting from the link state the simulator
starts from (time 0, the capacity trace at the offset the simulator draws for replication
``replication``'s phone 0). The simulator replays the same images in the same order
(``ciarsim.sim.simulate``, replication ``replication``). Traces come from the runner's trace cache
(decoded on a miss, as ``ciarsim run`` does). Writes ``emulation.csv`` (one row per image: both
latencies), ``points.csv`` (per point and policy: medians, p95s, relative errors),
``losses.csv`` (each dropped data segment: its message, attempt and the kernel's time to resend
it), ``streams.csv`` (messages, segments and drops per policy and direction;
``ciarsim.emulate.losses``), ``packets.csv`` (the relay's log of every data segment: when it
arrived and left, its stream offset and size, whether it was dropped) and ``messages.csv`` (per
message: when its first segment reached the relay and when all of it had been delivered).

Supported: closed-loop arrivals on one device; ``constant`` capacity or ``trace`` capacity in
Mahimahi format. Units: ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ciarsim.emulate.losses import message_times, packet_log, place_drops
from ciarsim.emulate.program import programs
from ciarsim.emulate.session import CONGESTION, check_congestion, check_host, run_session
from ciarsim.errors import EmulationError
from ciarsim.runner import store
from ciarsim.runner.run import Decoder, decode_task, plan_jobs, preflight
from ciarsim.runner.trace_cache import TraceCache
from ciarsim.scenario.schema import Scenario
from ciarsim.scenario.sweep import hashed_seed
from ciarsim.sim.world import World, simulate
from ciarsim.trace import TraceSet


@dataclass(frozen=True)
class EmulationResult:
    out_dir: Path
    images: pd.DataFrame  # one row per (point, policy, image)
    points: pd.DataFrame  # one row per (point, policy)
    losses: pd.DataFrame  # one row per dropped data segment (ciarsim.emulate.losses)
    streams: pd.DataFrame  # per (point, policy, direction): messages, segments, drops


def check_supported(sc: Scenario) -> None:
    """Raise ``EmulationError`` naming the field the emulator cannot reproduce."""
    net, arr = sc.network, sc.workload.arrival
    if net.capacity not in ("constant", "trace"):
        raise EmulationError(f"network.capacity: the emulator supports 'constant' and 'trace', "
                             f"got '{net.capacity}'")  # fmt: skip
    if net.capacity == "trace" and net.trace_format != "mahimahi":
        raise EmulationError(f"network.trace_format: the emulator replays 'mahimahi' traces, "
                             f"got '{net.trace_format}'")  # fmt: skip
    if arr.kind != "closed_loop" or arr.devices != 1:
        raise EmulationError("workload.arrival: the emulator runs one device in a closed loop "
                             "(kind: closed_loop, devices: 1)")  # fmt: skip


def draw_seed(seed: int, stream: str, replication: int) -> int:
    """The seed (0 <= s < 2**63) of one emulated point's random draws, the relay's (jitter,
    losses) and the simulator's replay next to it (jitter, losses, trace phase): the first 8
    bytes of SHA-256(``"ciarsim/emulate/v1/<seed>/<stream>/<replication>"``), shifted right one
    bit. ``stream`` names the point, so the points of a grid are independent samples: with the
    scenario's ``replication_seed`` alone every point drew the same loss sequence, and the same
    packets of the same messages were lost at every point of a grid (the simulator's sweeps use
    such common random numbers on purpose; a validation must not)."""
    return hashed_seed("ciarsim/emulate/v1", seed, stream, replication)


def relay_spec(sc: Scenario, replication: int, seed: int) -> dict:
    """The relay's description of ``sc``'s link (both directions), seeded by ``seed``
    (``draw_seed``), trace offsets as the simulator's phone 0 draws them with that seed."""
    net = sc.network
    offsets = (0.0, 0.0)
    if net.capacity == "trace":
        world = World(workload=sc.workload, models=sc.models, network=net, seed=seed,
                      replication=replication, policy="emulate")  # fmt: skip
        phone = world.phone(0)
        offsets = (phone.uplink.capacity.offset_ms, phone.downlink.capacity.offset_ms)

    def direction(mbps, trace, offset) -> dict:
        return {"one_way_ms": net.one_way_ms, "mbps": mbps, "trace_path": trace,
                "offset_ms": offset, "jitter_ms": net.jitter_ms, "jitter_dist": net.jitter_dist,
                "loss_rate": net.loss_rate}  # fmt: skip

    return {
        "uplink": direction(net.uplink_mbps, net.uplink_trace, offsets[0]),
        "downlink": direction(net.downlink_mbps, net.downlink_trace, offsets[1]),
        "seed": [seed],
    }


def _first(traces: TraceSet, n: int) -> TraceSet:
    return TraceSet.from_images([traces.image(i) for i in range(min(n, len(traces)))], traces.meta)


def _simulated(traces: TraceSet, sc: Scenario, label: str, replication: int, seed: int) -> list:
    rec = simulate(traces, workload=sc.workload, models=sc.models, network=sc.network, seed=seed,
                   replication=replication, policy=label, record_segments=False)  # fmt: skip
    return rec.images["latency_ms"].tolist()


def emulate_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    images: int = 4,
    cache_dir: str | Path = ".cache/ciarsim/traces",
    replication: int = 0,
    realtime: bool = True,
    congestion: str = CONGESTION,
    progress: Callable[[int, int, str], None] | None = None,
    decoder: Decoder | None = None,
    stream: str | None = None,
) -> EmulationResult:
    """Emulate and simulate the first ``images`` images of every (point, policy) of ``scenario``
    and write ``emulation.csv`` and ``points.csv`` to ``out_dir`` (atomically). Each point's
    draws are seeded by ``draw_seed(seed, name, replication)``, ``name`` the point's key, or
    ``"<stream>/<point index>"`` when ``stream`` is given (a caller that re-simulates the point
    under other link models, whose keys differ, names it itself). ``decoder`` replaces the
    policy registry (tests pass hand-built traces through it)."""
    out_dir = Path(out_dir)
    points, jobs = plan_jobs(scenario, out_dir / "parts")
    jobs = [j for j in jobs if j.replication == 0]
    for j in jobs:
        check_supported(j.point.scenario)
        if j.variants:
            raise EmulationError(f"policies: '{j.label}' is adaptive; the emulator replays "
                                 "fixed policies")  # fmt: skip
    check_host()
    check_congestion(congestion)
    if decoder is None:
        preflight(scenario)
    cache = TraceCache(cache_dir)
    rows, loss_rows, stream_rows, packet_rows = [], [], [], []
    for k, pt in enumerate(points):
        sc = pt.scenario
        seed = draw_seed(sc.seed, pt.key if stream is None else f"{stream}/{pt.index}", replication)
        mine = [j for j in jobs if j.point.index == pt.index]
        blocks, sims = [], []
        for j in mine:
            decode_task(j, str(cache_dir), decoder)
            traces = _first(TraceSet.load(cache.path(j.trace_key)), images)
            sims.append(_simulated(traces, sc, j.label, replication, seed))
            blocks.append({"think_ms": sc.workload.arrival.think_time_ms,
                           "images": programs(traces, sc)})  # fmt: skip
        res = run_session(relay_spec(sc, replication, seed), blocks,
                          sc.models.model_dump(mode="json"), realtime=realtime,
                          congestion=congestion)  # fmt: skip
        answers = res["server"]["answers"][1:]  # the first connection is the calibration's
        log = packet_log(res["relay"]["packets"], res["requests"], answers)
        lost, streams = place_drops(log, res["requests"], answers, res["relay"]["blocks"])
        for df_, rows_ in ((lost, loss_rows), (streams, stream_rows), (log, packet_rows)):
            df_.insert(0, "policy", [mine[b].label for b in df_["block"]])
            df_.insert(0, "point", pt.key)
            rows_.append(df_.drop(columns="block"))
        seen = [0] * len(mine)
        for r in res["images"]:  # in replay order within each block
            j, i = mine[r["block"]], seen[r["block"]]
            seen[r["block"]] += 1
            rows.append({"point": pt.key, **_params(pt), "policy": j.label, "image": r["image"],
                         "sim_latency_ms": sims[r["block"]][i], "emu_latency_ms": r["latency_ms"],
                         "congestion": r["congestion"], "testbed_rtt_ms": r["overhead_ms"],
                         "relay_late_ms_p99": res["relay"]["late_ms_p99"]})  # fmt: skip
        if progress:
            progress(k + 1, len(points), pt.label)
    df = pd.DataFrame(rows)
    pts = compare(df)
    losses = pd.concat(loss_rows, ignore_index=True)
    streams = pd.concat(stream_rows, ignore_index=True)
    store.write_table(losses, out_dir / "losses.csv")
    store.write_table(streams, out_dir / "streams.csv")
    packets = pd.concat(packet_rows, ignore_index=True)
    store.write_table(message_times(packets), out_dir / "messages.csv")
    store.write_table(packets, out_dir / "packets.csv")
    store.write_table(df, out_dir / "emulation.csv")
    store.write_table(pts, out_dir / "points.csv")
    return EmulationResult(out_dir, df, pts, losses, streams)


def _params(pt) -> dict:
    return {k: v if isinstance(v, (int, float, str)) else str(v) for k, v in pt.params.items()}


def compare(df: pd.DataFrame) -> pd.DataFrame:
    """Per (point, policy): simulated and emulated median and p95 latency and the relative
    errors of the simulator against the emulator, ``(sim - emu) / emu``."""
    keys = [c for c in df.columns if c not in ("image", "sim_latency_ms", "emu_latency_ms",
                                                "relay_late_ms_p99", "testbed_rtt_ms")]  # fmt: skip
    g = df.groupby(keys, sort=False)
    out = g.agg(images=("image", "size"),
                sim_median_ms=("sim_latency_ms", "median"),
                emu_median_ms=("emu_latency_ms", "median"),
                sim_p95_ms=("sim_latency_ms", lambda s: float(np.quantile(s, 0.95))),
                emu_p95_ms=("emu_latency_ms", lambda s: float(np.quantile(s, 0.95)))).reset_index()
    out["rel_error_median"] = (out["sim_median_ms"] - out["emu_median_ms"]) / out["emu_median_ms"]
    out["rel_error_p95"] = (out["sim_p95_ms"] - out["emu_p95_ms"]) / out["emu_p95_ms"]
    return out
