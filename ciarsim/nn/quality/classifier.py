"""The attribute classifier: a small CNN that reads, for each of the 9 position cells, the object's
shape, colour and size (0 = empty) and the background's kind and colour; its ground-truth targets,
predictions and held-out accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ciarsim.nn.data import (
    BACKGROUNDS, COLOUR_NAMES, IMAGE_SIZE, N_CELLS, SHAPES, SIZES, DataError, SceneAttrs,
)  # fmt: skip

# Classes per head; index 0 of the per-cell heads means "no object in this cell".
CELL_HEADS = {"shape": 1 + len(SHAPES), "colour": 1 + len(COLOUR_NAMES), "size": 1 + len(SIZES)}
SCENE_HEADS = {"bg_kind": len(BACKGROUNDS), "bg_colour": len(COLOUR_NAMES)}
HEAD_NAMES = ("occupancy", "shape", "colour", "size", "bg_kind", "bg_colour")
DEFAULT_CLASSIFIER_STEPS = 1500  # what the committed default classifier was trained for


@dataclass(frozen=True)
class ClassifierConfig:
    channels: tuple[int, int, int, int] = (16, 32, 32, 64)
    hidden: int = 128  # width of the per-cell and scene MLPs
    cell_dim: int = 16  # penultimate features per cell
    scene_dim: int = 16  # penultimate features for the background
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    noise_aug_std: float = 3.0  # Gaussian noise added to training images, uint8 units
    eval_n: int = 2000  # held-out scenes (EVAL_SEED) for the accuracy report

    @property
    def feature_dim(self) -> int:
        """Length of the penultimate feature vector used by the Fréchet distance."""
        return N_CELLS * self.cell_dim + self.scene_dim



@dataclass(frozen=True)
class Predictions:
    """Classifier outputs for n images. Per-cell arrays are [n, 9] with 0 = empty."""

    features: np.ndarray  # float64 [n, feature_dim]
    shape: np.ndarray  # int64 [n, 9], 1 + index into SHAPES
    colour: np.ndarray  # int64 [n, 9], 1 + index into COLOUR_NAMES
    size: np.ndarray  # int64 [n, 9], 1 + index into SIZES
    bg_kind: np.ndarray  # int64 [n], index into BACKGROUNDS
    bg_colour: np.ndarray  # int64 [n], index into COLOUR_NAMES


# ---------------------------------------------------------------- model


def _conv(c_in: int, c_out: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class AttributeClassifier(nn.Module):
    """Conv trunk on the image resized to 72x72, so that its 9x9 output map is aligned with the
    3x3 position cells (3x3 map positions per cell) -> the same MLP reads every cell.

    The penultimate features (used by the Fréchet distance) are the 9 per-cell vectors and one
    scene vector, concatenated: every head is a linear function of them.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        self.trunk = nn.Sequential(
            _conv(3, c1, 5, 2),  # (B, c1, 36, 36)
            _conv(c1, c2, 3, 2),  # (B, c2, 18, 18)
            _conv(c2, c3, 3, 1),  # (B, c3, 18, 18)
            _conv(c3, c4, 3, 2),  # (B, c4, 9, 9)
        )
        self.cell_mlp = nn.Sequential(
            nn.Linear(c4 * 9, config.hidden), nn.ReLU(), nn.Linear(config.hidden, config.cell_dim)
        )  # fmt: skip
        self.scene_mlp = nn.Sequential(
            nn.Linear(c4 * N_CELLS, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, config.scene_dim),
        )  # fmt: skip
        self.cell_head = nn.Linear(config.cell_dim, sum(CELL_HEADS.values()))
        self.scene_head = nn.Linear(config.scene_dim, sum(SCENE_HEADS.values()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: uint8 [B, 64, 64, 3] -> float [B, feature_dim] (after ReLU)."""
        x = x.permute(0, 3, 1, 2).float() / 255.0 - 0.5  # (B, 3, 64, 64)
        x = F.interpolate(x, size=(72, 72), mode="bilinear", align_corners=False)
        m = self.trunk(x)  # (B, C, 9, 9)
        b, c = m.shape[:2]
        cells = m.reshape(b, c, 3, 3, 3, 3).permute(0, 2, 4, 1, 3, 5)  # (B, 3, 3, C, 3, 3)
        per_cell = self.cell_mlp(cells.reshape(b, N_CELLS, c * 9)).flatten(1)  # (B, 9 * cell_dim)
        scene = self.scene_mlp(F.avg_pool2d(m, 3).flatten(1))  # (B, scene_dim)
        return F.relu(torch.cat([per_cell, scene], dim=1))

    def logits(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        n_cell = N_CELLS * self.config.cell_dim
        cells = feats[:, :n_cell].reshape(len(feats), N_CELLS, -1)  # (B, 9, cell_dim)
        cell_out = self.cell_head(cells).split(list(CELL_HEADS.values()), dim=2)  # (B, 9, k)
        scene_out = self.scene_head(feats[:, n_cell:]).split(list(SCENE_HEADS.values()), dim=1)
        return dict(zip(CELL_HEADS, cell_out)) | dict(zip(SCENE_HEADS, scene_out))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.logits(self.features(x))


def _init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Deterministic init from an explicit generator (no global RNG)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- targets and predictions


def attrs_to_targets(attrs: list[SceneAttrs]) -> dict[str, torch.Tensor]:
    """Ground truth as class indices: per-cell heads [n, 9] (0 = empty), scene heads [n]."""
    n = len(attrs)
    t = {k: torch.zeros(n, N_CELLS, dtype=torch.long) for k in CELL_HEADS}
    for i, a in enumerate(attrs):
        for o in a.objects:
            t["shape"][i, o.cell] = 1 + SHAPES.index(o.shape)
            t["colour"][i, o.cell] = 1 + COLOUR_NAMES.index(o.colour)
            t["size"][i, o.cell] = 1 + SIZES.index(o.size)
    t["bg_kind"] = torch.tensor([BACKGROUNDS.index(a.background_kind) for a in attrs])
    t["bg_colour"] = torch.tensor([COLOUR_NAMES.index(a.background_colour) for a in attrs])
    return t


def check_images(images: np.ndarray, where: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise DataError(
            f"{where}: expected uint8 images [n, {IMAGE_SIZE}, {IMAGE_SIZE}, 3], "
            f"found {images.dtype} {list(images.shape)}"
        )
    return images


@torch.no_grad()
def predict(model: AttributeClassifier, images: np.ndarray, batch_size: int = 256) -> Predictions:
    """Run the classifier on uint8 images [n, 64, 64, 3]."""
    images = check_images(images, "predict")
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[np.ndarray]] = {}
    for lo in range(0, len(images), batch_size):
        x = torch.from_numpy(images[lo : lo + batch_size]).to(device)
        feats = model.features(x)
        out = {k: v.argmax(-1) for k, v in model.logits(feats).items()} | {"features": feats}
        for k, v in out.items():
            chunks.setdefault(k, []).append(v.cpu().numpy())
    if not chunks:
        raise DataError("predict: got 0 images; expected at least 1")
    arrays = {k: np.concatenate(v) for k, v in chunks.items()}
    arrays["features"] = arrays["features"].astype(np.float64)
    return Predictions(**arrays)


def heldout_accuracy(pred: Predictions, attrs: list[SceneAttrs]) -> dict[str, float]:
    """Per-head accuracy. occupancy: over all cells; shape/colour/size: over occupied cells."""
    t = {k: v.numpy() for k, v in attrs_to_targets(attrs).items()}
    occupied = t["shape"] > 0
    acc = {"occupancy": float(np.mean((pred.shape > 0) == occupied))}
    for k in CELL_HEADS:
        acc[k] = float(np.mean(getattr(pred, k)[occupied] == t[k][occupied]))
    for k in SCENE_HEADS:
        acc[k] = float(np.mean(getattr(pred, k) == t[k]))
    return acc
