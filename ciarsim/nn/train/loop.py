"""What every training loop shares: the learning-rate ``Schedule`` (steps or wall-clock budget),
precision and autocast, periodic partial checkpoints, progress reports, and the training /
held-out scene sets with the data record a card keeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from pathlib import Path
from typing import Callable

import torch

from ciarsim.errors import CiarsimError
from ciarsim.nn import checkpoints as ck
from ciarsim.nn import splits
from ciarsim.nn.data import TRAIN_SEED, SceneSet, folder_split, make_dataset
from ciarsim.nn.train.presets import TrainPreset

Progress = Callable[[str, int, int, dict], None]  # (stage, step, total, metrics)


class Schedule:
    """Linear warm-up, then cosine decay to 10% of ``peak`` over ``steps`` steps or, when
    ``budget_s`` is given, over whichever of the step count and the wall-clock budget ends first
    (the card records the steps actually run)."""

    def __init__(self, steps: int, peak: float, budget_s: float | None = None, warmup: int = 50):
        self.steps, self.peak, self.budget_s, self.warmup = steps, peak, budget_s, min(warmup, steps)
        self.t0 = time.time()

    def frac(self, step: int) -> float:
        f = step / max(1, self.steps)
        return max(f, (time.time() - self.t0) / self.budget_s) if self.budget_s else f

    def done(self, step: int) -> bool:
        return self.frac(step) >= 1.0

    def lr(self, step: int) -> float:
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        return self.peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, self.frac(step)))))


PRECISIONS = ("auto", "fp32", "bf16")


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32."""
    if precision not in PRECISIONS:
        raise CiarsimError(f"train: unknown precision '{precision}', expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if str(device).startswith("cuda") or _cpu_has_bf16() else "fp32"


def autocast(device: str, precision: str):
    """bf16 autocast for the GPT forward passes (weights, optimiser state and losses stay fp32)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def report(progress: Progress | None, stage: str, step: int, total: int, metrics: dict):
    if progress is not None:
        progress(stage, step, total, metrics)


CHECKPOINT_EVERY_S = 300.0  # partial checkpoints during long runs (card says "partial": true)


class PartialSaver:
    """Saves ``{kind}.*`` every CHECKPOINT_EVERY_S seconds so a killed run leaves a usable model."""

    def __init__(self, out_dir, kind: str, info: dict):
        self.out_dir, self.kind, self.info, self.last = out_dir, kind, info, time.time()

    def __call__(self, model, step: int) -> None:
        if time.time() - self.last >= CHECKPOINT_EVERY_S:
            training = {**self.info.get("training", {}), "partial": True, "steps": step}
            ck.save_checkpoint(model, self.out_dir, self.kind, {**self.info, "training": training})
            self.last = time.time()


def batch_idx(gen: torch.Generator, n: int, b: int) -> torch.Tensor:
    return torch.randint(0, n, (b,), generator=gen)



def train_scenes(p: TrainPreset, data_dir=None) -> SceneSet:
    """Training scenes: the generator's ``n_train`` TRAIN_SEED scenes, or a user folder's rows
    except its held-out last 10% (captions.csv order)."""
    return folder_split(data_dir)[0] if data_dir else make_dataset(p.n_train, TRAIN_SEED)


def heldout_scenes(n: int, data_dir=None) -> SceneSet:
    """Held-out scenes for the card, the ``test`` split: ``n`` EVAL_SEED scenes, or a user folder's
    test rows (the second half of its last 10%)."""
    return splits.folder_rows("test", data_dir) if data_dir else splits.scenes("test", n)


def data_record(p: TrainPreset, data_dir=None) -> dict:
    """What a checkpoint was trained on (written into its JSON card)."""
    if not data_dir:
        return {"source": "procedural", "train_seed": TRAIN_SEED, "n_train": p.n_train}
    train, held = folder_split(data_dir)
    csv_sha = hashlib.sha256((Path(data_dir) / "captions.csv").read_bytes()).hexdigest()
    return {"source": "folder", "path": str(Path(data_dir).resolve()), "captions_csv_sha256": csv_sha,
            "n_train": len(train.captions), "n_heldout": len(held.captions)}



def checkpoint_sha(out_dir, kind: str) -> str:
    return ck.read_json(Path(out_dir) / f"{kind}.json", kind)["sha256"]

