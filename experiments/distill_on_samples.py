"""Issue 17 experiment: distil the device on the cloud's own samples instead of the training
scenes' codes.

The card measures agreement teacher-forced on the cloud's samples of the test prompts, while the
device is trained teacher-forced on real images' codes: a train/test shift. This script
generates the cloud's samples (CFG, temperature and top-k of the preset) for the first
``--prompts`` TRAINING captions, then continues the device's training (``train_device`` with
``--kl``, ``--steps``, resumed) on those sequences, and prints the card's greedy agreement.
Nothing is shipped: it writes a candidate model set to ``--out``.

    python experiments/distill_on_samples.py --out /tmp/d17 [--models DIR] [--prompts 2000] [--start 0] [--steps 400] [--kl 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ciarsim.nn import checkpoints as ck  # noqa: E402
from ciarsim.nn.gpt import generate  # noqa: E402
from ciarsim.nn.train import device as device_training  # noqa: E402
from ciarsim.nn.train.loop import heldout_scenes, train_scenes  # noqa: E402
from ciarsim.nn.train.presets import get_preset  # noqa: E402
from ciarsim.nn.train.signals import teacher_forced_signals  # noqa: E402


def cloud_samples(models, captions: list[str], seed: int, p) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption ids and the cloud's sampled codes for ``captions`` (batches of 100)."""
    cap = torch.from_numpy(models.captions.encode_batch(captions))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        codes = torch.cat([generate(models.cloud, cap[i:i + 100], p.cfg_scale, p.temperature, p.top_k, gen)
                           for i in range(0, len(cap), 100)])
    return cap, codes


def agreement(out: Path, seed: int) -> float:
    """The card's greedy agreement (test prompts, teacher-forced on the cloud's samples)."""
    p = get_preset("shapes-256")
    models = ck.load_models(out)
    data = heldout_scenes(p.n_eval_prompts)
    cap, codes = cloud_samples(models, data.captions, seed, p)
    return float(teacher_forced_signals(models.cloud, models.device, cap, codes, p.cfg_scale)["agree"].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=ROOT / "models" / "shapes-256")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--start", type=int, default=0, help="first training caption (fresh captions for a second round)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--kl", type=float, default=2.0)
    a = ap.parse_args()
    p = get_preset("shapes-256")
    a.out.mkdir(parents=True, exist_ok=True)
    for f in list(a.models.glob("*.json")) + list(a.models.glob("*.safetensors")):
        shutil.copy(f, a.out)
    t0 = time.time()
    models = ck.load_models(a.out)
    train = train_scenes(p)
    cap, codes = cloud_samples(models, list(train.captions[a.start:a.start + a.prompts]), p.seed + 11 + a.start, p)
    print(f"cloud samples: {len(codes)} in {time.time() - t0:.0f} s", flush=True)
    device_training.encode_scenes = lambda *_args, **_kw: (cap, codes)  # train on the cloud's samples
    card = device_training.train_device(a.out, kl=a.kl, steps=a.steps, resume=True, phi_every=4)
    print(f"trained {card['training']['steps']} steps in {card['training']['seconds']} s", flush=True)
    # the card's own test-prompt samples use seed p.seed + 3 (ciarsim.nn.train.evaluate)
    print(f"greedy agreement (card protocol, 200 test prompts): {agreement(a.out, p.seed + 3):.4f}")


if __name__ == "__main__":
    main()
