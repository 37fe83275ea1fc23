"""Training of the attribute classifier on fresh procedural scenes (TRAIN_SEED), with its held-out
accuracy on EVAL_SEED scenes; ``build_default_classifier`` trains and saves the default one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ciarsim.nn.data import EVAL_SEED, TRAIN_SEED, DataError, make_dataset
from ciarsim.nn.quality.classifier import (
    CELL_HEADS, SCENE_HEADS, AttributeClassifier, ClassifierConfig, _init_weights, attrs_to_targets,
    heldout_accuracy, predict,
)  # fmt: skip
from ciarsim.nn.quality.store import DEFAULT_CLASSIFIER_PATH, REBUILD_COMMAND, save_classifier

DEFAULT_CLASSIFIER_STEPS = 1500  # what the committed default classifier was trained for


def _loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy summed over heads and cells, mean over the batch (cells are not averaged,
    so the few occupied cells are not drowned by the empty ones)."""
    cell = sum(
        F.cross_entropy(logits[k].flatten(0, 1), targets[k].flatten(), reduction="sum")
        for k in CELL_HEADS
    ) / len(targets["bg_kind"])
    return cell + sum(F.cross_entropy(logits[k], targets[k]) for k in SCENE_HEADS)


def _lr_factor(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(steps - warmup, 1)))


def train_classifier(
    config: ClassifierConfig,
    steps: int,
    seed: int,
    device: str = "cpu",
    progress: Callable[[int, float], None] | None = None,
) -> tuple[AttributeClassifier, dict]:
    """Train on fresh scenes (TRAIN_SEED, indices 0 .. steps * batch_size - 1).

    ``seed`` drives the weight init and the noise augmentation. Returns the model (eval mode)
    and metrics: held-out accuracy per head on ``config.eval_n`` EVAL_SEED scenes, wall time.
    """
    if steps < 1:
        raise DataError(f"train_classifier: steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    model = AttributeClassifier(config)
    _init_weights(model, gen)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss = torch.zeros(())
    for step in range(steps):
        model.train()
        for group in opt.param_groups:
            group["lr"] = config.lr * _lr_factor(step, steps, config.warmup_steps)
        batch = make_dataset(config.batch_size, TRAIN_SEED, start=step * config.batch_size)
        x = torch.from_numpy(batch.images).float()
        x = x + torch.randn(x.shape, generator=gen) * config.noise_aug_std
        x = x.clamp(0, 255).round().to(torch.uint8).to(device)
        targets = {k: v.to(device) for k, v in attrs_to_targets(batch.attrs).items()}
        loss = _loss(model(x), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step, float(loss.detach()))
    model.eval()
    held = make_dataset(config.eval_n, EVAL_SEED)
    accuracy = heldout_accuracy(predict(model, held.images), held.attrs)
    metrics = {
        "heldout_accuracy": accuracy,
        "final_loss": float(loss.detach()),
        "steps": steps,
        "scenes_seen": steps * config.batch_size,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    return model.cpu(), metrics


def build_default_classifier(
    steps: int = DEFAULT_CLASSIFIER_STEPS,
    seed: int = 0,
    path: Path | str = DEFAULT_CLASSIFIER_PATH,
    progress: Callable[[int, float], None] | None = None,
    command: str = REBUILD_COMMAND,
) -> dict:
    """Train the default classifier and save it; returns the card."""
    model, metrics = train_classifier(ClassifierConfig(), steps, seed, progress=progress)
    return save_classifier(model, metrics, path, seed, command)


def print_progress(step: int, loss: float, every: int = 50) -> None:
    """A ``progress`` callback that prints the loss every ``every`` steps."""
    if step % every == 0:
        print(f"step {step:6d}  loss {loss:.4f}", flush=True)