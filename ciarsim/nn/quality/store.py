"""The classifier on disk: safetensors weights and a JSON card beside them, checked on load (card
format, SHA-256, config, every tensor's shape) with the checks ``ciarsim.nn.checkpoints`` uses.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ciarsim.errors import CheckpointError
from ciarsim.nn.checkpoints import check_shapes, sha256_file, verify_sha256, write_json
from ciarsim.nn.data import EVAL_SEED, TRAIN_SEED
from ciarsim.nn.quality.classifier import AttributeClassifier, ClassifierConfig

CARD_FORMAT = "ciarsim-attribute-classifier/1"
REBUILD_COMMAND = "ciarsim train classifier"
FIX = f"rebuild with `{REBUILD_COMMAND}`"
DEFAULT_CLASSIFIER_PATH = (
    Path(__file__).resolve().parents[3] / "models" / "shapes-256" / "classifier.safetensors"
)


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
        "sha256": sha256_file(tmp),
        "torch_version": torch.__version__,
        "command": command,
        "rebuild_command": REBUILD_COMMAND,
    }
    os.replace(tmp, path)
    write_json(_card_path(path), card)
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


def load_classifier(path: Path | str | None = None, device: str = "cpu") -> AttributeClassifier:
    """Load a classifier and check it against its card (hash, config, tensor shapes)."""
    path = Path(DEFAULT_CLASSIFIER_PATH if path is None else path)
    card = _read_card(path)
    verify_sha256(path, card.get("sha256"), "classifier", FIX)
    model = AttributeClassifier(_config_from_card(card, _card_path(path)))
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"{path}: not a safetensors file ({e}); rebuild with `{REBUILD_COMMAND}`"
        ) from e
    check_shapes(model, state, "classifier", path, FIX)
    model.load_state_dict(state)
    return model.to(device).eval()