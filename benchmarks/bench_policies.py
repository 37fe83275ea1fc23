"""Decode-trace throughput of every policy on this CPU: 64 images x 256 tokens each.

Uses the trained default models when ``models/shapes-256`` holds them, else randomly initialised
models of the same shapes (decode time does not depend on the weights' values, only on shapes and
on how many tokens each policy verifies, which random weights change; the script says which it
used). Quality scoring (VQ decode + classifier) is timed separately.

    python benchmarks/bench_policies.py [--images 64] [--threads 2] [--policies ciar,base]

Target (issue "Decoding policies"): ``ciar`` traces for 64 images x 256 tokens in <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from ciarsim.policies import REGISTRY
from ciarsim.scenario.schema import ModelsConfig, Scenario, WorkloadConfig

DEFAULT_POLICIES = [
    {"name": "base"}, {"name": "device_only"}, {"name": "sd", "gamma": 4}, {"name": "lantern"},
    {"name": "code_split"}, {"name": "gated", "signal": "entropy"},
    {"name": "gated", "signal": "uhlm", "label": "gated-uhlm"}, {"name": "ciar"}, {"name": "oracle"},
]  # fmt: skip


def models_for_bench(checkpoints: Path):
    if (checkpoints / "card.json").exists():
        from ciarsim.nn.checkpoints import load_models

        return load_models(checkpoints), "trained models/shapes-256"
    from ciarsim.nn.checkpoints import ModelSet
    from ciarsim.nn.device import DeviceConfig, DeviceModel
    from ciarsim.nn.gpt import GPT
    from ciarsim.nn.train import cloud_config, get_preset
    from ciarsim.nn.vq import VQ_PRESETS, VQModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        vq = VQModel(VQ_PRESETS["shapes-256"]())
        cfg = cloud_config(get_preset("shapes-256"), vq)
        cloud, dev = GPT(cfg), DeviceModel(DeviceConfig(cloud=cfg))
    return ModelSet(vq.eval(), cloud.eval(), dev.eval(), {}), "random weights, shapes-256 shapes"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--policies", default="")
    ap.add_argument("--checkpoints", default="models/shapes-256")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    models, which = models_for_bench(Path(a.checkpoints))
    sc = Scenario.model_validate({"policies": DEFAULT_POLICIES})
    wanted = set(a.policies.split(",")) - {""}
    wl = WorkloadConfig(images=a.images)
    T = wl.tokens_per_image
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{a.threads} threads, {which}, load avg {os.getloadavg()[0]:.1f}")
    print("| policy | seconds | tokens/s | cloud passes % of T |")
    print("|---|---|---|---|")
    for pol in sc.policies:
        if wanted and pol.display not in wanted:
            continue
        t0 = time.perf_counter()
        ts = REGISTRY[pol.name](pol, wl, ModelsConfig(), 0, models=models, quality=False)
        dt = time.perf_counter() - t0
        passes = sum(ts.image(i).cloud_passes for i in range(len(ts))) / (len(ts) * T)
        print(f"| {pol.display} | {dt:.1f} | {a.images * T / dt:,.0f} | {100 * passes:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
