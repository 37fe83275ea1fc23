"""A tiny results folder made by the real runner from hand-built traces (no model decode).

Two policies (base, ciar), a 2 x 2 sweep over RTT and uplink bandwidth, 2 replications, 3 images
of 4 x 4 tokens; the traces carry quality scores, decoded previews and captions, so every part of
a report that needs them (quality figures, token maps) is exercised.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ciarsim.runner.run import run_scenario
from ciarsim.scenario import parse_scenario
from ciarsim.trace import (
    OP_DTYPE, SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT, SOURCE_DEVICE_VERIFIED,
    ImageTrace, TraceSet, cloud_op, device_op,
)  # fmt: skip

SCENARIO = """
name: tiny-report
seed: 5
replications: 2
workload: {images: 3, token_grid: 4}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40, jitter_ms: 3}
policies:
  - {name: base}
  - {name: ciar, tau: 0.3, rho: 0.25}
sweep:
  network.rtt_ms: [20, 80]
  network.uplink_mbps: [2, 20]
"""


def _ciar_trace(i: int, T: int) -> ImageTrace:
    """Cloud prefix of 4 tokens, then device drafts; every 4th drafted token goes to the cloud."""
    ops = [cloud_op(prompt_up=True, steps=3, new_tokens=1, context=0, tokens_down=4),
           device_op(1, 0, new_tokens=4, prefill_text=True)]  # fmt: skip
    source = np.full(T, SOURCE_CLOUD, np.uint8)
    u = np.full(T, np.nan, np.float32)
    rng = np.random.default_rng(i)
    known, kept = 4, 0
    for t in range(4, T):
        u[t] = rng.uniform(0.0, 0.6)
        if t % 4 != 3:
            ops.append(device_op(1, t - 1))
            source[t], kept = SOURCE_DEVICE_KEPT, kept + 1
            continue
        changed = (t + i) % 2
        ops.append(cloud_op(steps=1, new_tokens=t + 1 - known, context=known - 1,
                            tokens_up=t + 1 - known, features_up=kept, tokens_down=1,
                            changed=changed))  # fmt: skip
        source[t] = SOURCE_CLOUD_RESAMPLED if changed else SOURCE_DEVICE_VERIFIED
        known, kept = t + 1, 0
    return ImageTrace(i, np.array(ops, OP_DTYPE), np.arange(T, dtype=np.int32), u, source)


def _base_trace(i: int, T: int) -> ImageTrace:
    ops = [cloud_op(prompt_up=True, steps=T - 1, new_tokens=1, context=0, tokens_down=T)]
    return ImageTrace(i, np.array(ops, OP_DTYPE), np.arange(T, dtype=np.int32),
                      np.full(T, np.nan, np.float32), np.full(T, SOURCE_CLOUD, np.uint8))


def hand_decoder(policy, workload, models, seed):
    T = workload.tokens_per_image
    idx = range(workload.prompt_start, workload.prompt_start + workload.images)
    make = _base_trace if policy.name == "base" else _ciar_trace
    traces = [make(i, T) for i in idx]
    n = len(traces)
    good = 0.30 if policy.name == "base" else 0.27
    meta = {"policy": policy.name, "captions": [f"a red circle above a blue square {i}" for i in idx],
            "quality": {"caption_consistency": [good + 0.01 * k for k in range(n)],
                        "fd": 12.0 if policy.name == "base" else 14.5, "fd_n_gen": n}}  # fmt: skip
    ts = TraceSet.from_images(traces, meta)
    yy, xx = np.mgrid[0:64, 0:64]
    pixels = np.stack([np.stack([(xx * 4 + 40 * k) % 256, (yy * 4) % 256,
                                 np.full_like(xx, 60 * k)], -1) for k in range(n)])  # fmt: skip
    return dataclasses.replace(ts, preview=pixels.astype(np.uint8))


def make_results(out_dir, cache_dir, text: str = SCENARIO):
    """Run ``text`` with the hand decoder into ``out_dir``; return the folder."""
    run_scenario(parse_scenario(text), out_dir, cache_dir=cache_dir, decoder=hand_decoder)
    return out_dir


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory):
    """A pristine results folder (tests copy it before writing a report into it)."""
    root = tmp_path_factory.mktemp("results")
    return make_results(root / "tiny", root / "cache")


BREAKDOWN = ("device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms",
             "cloud_compute_ms")  # fmt: skip


def write_synthetic(root, policies, params: list[dict], reps: int = 2, images: int = 4):
    """A results folder written directly with the documented columns (no simulation): latency
    grows with RTT, falls with bandwidth and arrival rate raises the queue; quality and cloud
    passes depend on the policy's ``policies.<label>.tau`` when it is swept."""
    import pandas as pd  # noqa: PLC0415

    root.mkdir(parents=True, exist_ok=True)
    rows, pts = [], []
    for k, p in enumerate(params):
        key = f"p{k:03d}"
        pts.append({"point": key, "point_index": k, **p})
        rtt = p.get("network.rtt_ms", 50.0)
        up = p.get("network.uplink_mbps", 10.0)
        rate = p.get("workload.arrival.rate_per_s", 0.1)
        for j, pol in enumerate(policies):
            tau = p.get(f"policies.{pol}.tau", 0.3)
            share = 1.0 if pol == "base" else max(0.05, 0.6 - tau) / (1 + 0.2 * j)
            for r in range(reps):
                rng = np.random.default_rng(1000 * k + 10 * j + r)
                for i in range(images):
                    parts = {"device_compute_ms": 0.0 if pol == "base" else 900.0,
                             "uplink_ms": 40.0 * share * 256 / up,
                             "downlink_ms": 20.0 * share,
                             "rtt_wait_ms": rtt * (1 + 255 * share * 0.2),
                             "cloud_queue_ms": 500.0 * rate * rng.uniform(0.5, 1.5),
                             "cloud_compute_ms": 2500.0 * share * rng.uniform(0.9, 1.1)}
                    lat = sum(parts.values())
                    rows.append({"point": key, "point_index": k, "policy": pol, "replication": r,
                                 "image": i, "device": 0, "start_ms": 0.0, "end_ms": lat,
                                 "latency_ms": lat, **parts,
                                 "cloud_calls": int(1 + 40 * share), "cloud_passes": int(257 * share),
                                 "bytes_up": int(3000 * share), "bytes_down": 500,
                                 "tokens_verified": int(256 * share), "tokens_changed": 3,
                                 "tokens": 256,
                                 "caption_consistency": 0.30 - 0.05 * (1 - share) + 0.002 * i,
                                 "fd": 10.0 + 8 * (1 - share), "fd_n": images})
    pd.DataFrame(rows).to_parquet(root / "results.parquet", index=False)
    pd.DataFrame(pts).to_csv(root / "points.csv", index=False)
    (root / "scenario.yaml").write_text("name: synthetic\nmodels:\n  cloud: {hardware: h100, "
                                        "runtime: cudagraph}\n  device: {hardware: "
                                        "snapdragon-8-gen-3, runtime: npu}\n")
    return root
