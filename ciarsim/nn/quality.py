"""Quality metrics for generated scenes: stand-ins for CLIP score and FID, honestly named.

- ``caption_consistency``: the share of the attributes a caption states (each object's shape,
  colour and size at its position; the background's kind and colour) that an attribute
  classifier finds in the image. The analogue of CLIP score; 1.0 = everything found.
- ``frechet_distance``: the Fréchet distance between Gaussians fitted to the classifier's
  penultimate features of generated and of real images (Heusel et al. 2017, "GANs trained by a
  two time-scale update rule converge to a local Nash equilibrium", with this classifier in place
  of Inception-v3). The analogue of FID; 0 = same feature statistics. Biased at small sample
  sizes like FID: compare only numbers computed with the same ``n_gen`` and ``n_ref``.

The classifier is a small CNN trained on the procedural generator's ground truth
(``ciarsim.nn.data``, seed ``TRAIN_SEED``; held-out accuracy measured on ``EVAL_SEED``). It
predicts, for each of the 9 position cells, the object's shape, colour and size, each with an
"empty" class (index 0), plus the background's kind and colour. Weights are stored as
safetensors with a JSON card; never as pickles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ciarsim.errors import CheckpointError
from ciarsim.nn.data import (
    BACKGROUNDS,
    COLOUR_NAMES,
    EVAL_SEED,
    IMAGE_SIZE,
    N_CELLS,
    SHAPES,
    SIZES,
    TRAIN_SEED,
    DataError,
    SceneAttrs,
    make_dataset,
    parse_caption,
)

CARD_FORMAT = "ciarsim-attribute-classifier/1"
REBUILD_COMMAND = "ciarsim train classifier"
DEFAULT_CLASSIFIER_PATH = (
    Path(__file__).resolve().parents[2] / "models" / "shapes-256" / "classifier.safetensors"
)
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
class FDResult:
    fd: float
    n_gen: int
    n_ref: int


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


def _check_images(images: np.ndarray, where: str) -> np.ndarray:
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
    images = _check_images(images, "predict")
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


# ---------------------------------------------------------------- metrics


def _default(classifier: AttributeClassifier | None) -> AttributeClassifier:
    return load_classifier() if classifier is None else classifier


def caption_consistency_per_image(
    images: np.ndarray, captions: list[str], classifier: AttributeClassifier | None = None
) -> np.ndarray:
    """Per image, the share (0..1) of the caption's attributes the classifier finds.

    Each object counts 3 attributes (shape, colour, size, all read at its stated cell), the
    background 2 (kind, colour). Captions must follow the grammar of ``ciarsim.nn.data``.
    """
    images = _check_images(images, "caption_consistency")
    if len(images) != len(captions):
        raise DataError(
            f"caption_consistency: {len(images)} images but {len(captions)} captions; "
            "expected one caption per image"
        )
    pred = predict(_default(classifier), images)
    scores = np.zeros(len(images))
    for i, caption in enumerate(captions):
        a = parse_caption(caption)
        hits = [
            pred.bg_kind[i] == BACKGROUNDS.index(a.background_kind),
            pred.bg_colour[i] == COLOUR_NAMES.index(a.background_colour),
        ]
        for o in a.objects:
            hits.append(pred.shape[i, o.cell] == 1 + SHAPES.index(o.shape))
            hits.append(pred.colour[i, o.cell] == 1 + COLOUR_NAMES.index(o.colour))
            hits.append(pred.size[i, o.cell] == 1 + SIZES.index(o.size))
        scores[i] = np.mean(hits)
    return scores


def caption_consistency(
    images: np.ndarray, captions: list[str], classifier: AttributeClassifier | None = None
) -> float:
    """Mean over images of ``caption_consistency_per_image`` (0..1, higher is better)."""
    return float(np.mean(caption_consistency_per_image(images, captions, classifier)))


def _sqrtm_trace_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr(sqrt(s1 @ s2)) for symmetric PSD s1, s2, via the eigenvalues of sqrt(s1) s2 sqrt(s1)."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def frechet_distance_from_features(f_gen: np.ndarray, f_ref: np.ndarray) -> FDResult:
    """Fréchet distance between Gaussians fitted to two feature sets [n, d] (float64)."""
    for name, f in (("generated", f_gen), ("reference", f_ref)):
        if f.ndim != 2 or len(f) < 2:
            raise DataError(f"frechet_distance: {name} set needs >= 2 samples, found {len(f)}")
    mu1, mu2 = f_gen.mean(0), f_ref.mean(0)
    s1, s2 = np.cov(f_gen, rowvar=False), np.cov(f_ref, rowvar=False)
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2))
    fd -= 2.0 * _sqrtm_trace_product(s1, s2)
    return FDResult(fd=max(fd, 0.0), n_gen=len(f_gen), n_ref=len(f_ref))


def frechet_distance(
    gen_images: np.ndarray, ref_images: np.ndarray, classifier: AttributeClassifier | None = None
) -> FDResult:
    """FID analogue between uint8 image sets [n, 64, 64, 3] (lower is better)."""
    model = _default(classifier)
    f_gen = predict(model, _check_images(gen_images, "frechet_distance (generated)")).features
    f_ref = predict(model, _check_images(ref_images, "frechet_distance (reference)")).features
    return frechet_distance_from_features(f_gen, f_ref)


# ---------------------------------------------------------------- training


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


# ---------------------------------------------------------------- checkpoints


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _card_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_classifier(
    model: AttributeClassifier, metrics: dict, path: Path | str, seed: int, command: str = ""
) -> dict:
    """Write ``path`` (safetensors) and its JSON card beside it (``.json``); returns the card.

    Both files are written to temporary names first and renamed, so nothing is half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    card = {
        "format": CARD_FORMAT,
        "config": asdict(model.config),
        "data_seed": TRAIN_SEED,
        "eval_seed": EVAL_SEED,
        "init_seed": seed,
        **metrics,
        "n_params": sum(p.numel() for p in model.parameters()),
        "weights_file": path.name,
        "sha256": _sha256(tmp),
        "torch_version": torch.__version__,
        "command": command,
        "rebuild_command": REBUILD_COMMAND,
    }
    card_tmp = _card_path(path).with_name(_card_path(path).name + ".tmp")
    card_tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    os.replace(card_tmp, _card_path(path))
    return card


def _config_from_card(card: dict, card_path: Path) -> ClassifierConfig:
    raw = card.get("config")
    known = {f.name for f in fields(ClassifierConfig)}
    if not isinstance(raw, dict) or set(raw) - known:
        raise CheckpointError(
            f"{card_path}: 'config' must hold the fields {sorted(known)}, found {raw!r}; "
            f"rebuild with `{REBUILD_COMMAND}`"
        )
    return ClassifierConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _read_card(path: Path) -> dict:
    card_path = _card_path(path)
    for p in (path, card_path):
        if not p.is_file():
            raise CheckpointError(
                f"classifier file {p} not found; build it with `{REBUILD_COMMAND}`"
            )
    try:
        card = json.loads(card_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{card_path}: unreadable card ({e}); rebuild with `{REBUILD_COMMAND}`"
        ) from e
    if card.get("format") != CARD_FORMAT:
        raise CheckpointError(
            f"{card_path}: format {card.get('format')!r}, expected {CARD_FORMAT!r}; "
            f"rebuild with `{REBUILD_COMMAND}`"
        )
    return card


def _check_state(state: dict, model: nn.Module, path: Path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    for key in sorted(set(expected) | set(found)):
        if expected.get(key) != found.get(key):
            raise CheckpointError(
                f"{path}: tensor {key!r} has shape {found.get(key)}, expected {expected.get(key)} "
                f"(None = absent); rebuild with `{REBUILD_COMMAND}`"
            )


def load_classifier(path: Path | str | None = None, device: str = "cpu") -> AttributeClassifier:
    """Load a classifier and check it against its card (hash, config, tensor shapes)."""
    path = Path(DEFAULT_CLASSIFIER_PATH if path is None else path)
    card = _read_card(path)
    found = _sha256(path)
    if found != card.get("sha256"):
        raise CheckpointError(
            f"{path}: SHA-256 {found} does not match the card's {card.get('sha256')} "
            f"(corrupted or replaced); rebuild with `{REBUILD_COMMAND}`"
        )
    model = AttributeClassifier(_config_from_card(card, _card_path(path)))
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"{path}: not a safetensors file ({e}); rebuild with `{REBUILD_COMMAND}`"
        ) from e
    _check_state(state, model, path)
    model.load_state_dict(state)
    return model.to(device).eval()


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
