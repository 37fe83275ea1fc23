"""Checkpoints: safetensors weights + a JSON card per model; loading verifies hash and shapes.

Layout of a model set (default ``models/shapes-256``)::

    tokenizer.safetensors  tokenizer.json   (VQModel)
    cloud.safetensors      cloud.json       (GPT)
    device.safetensors     device.json      (DeviceModel: trunk, Inter-Head, phi)
    card.json  CARD.md                      (aggregate metrics, human-readable card)

A model set may share another set's tokenizer and cloud without copying them: its ``{kind}.json``
names the other set's weights by a relative path (``"weights": "../shapes-256/cloud.safetensors"``,
written by ``link_checkpoint``) and keeps their SHA-256, so loading verifies the referenced file
exactly as it verifies a local one.

Weights are stored as fp16 (``STORE_DTYPE``) and loaded as fp32; every reported metric is measured
on the reloaded weights. Never pickles: ``safetensors`` only.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ciarsim.errors import CheckpointError
from ciarsim.io import write_text
from ciarsim.nn.digests import checkpoint_digests  # noqa: F401 - re-exported
from ciarsim.nn.data import CaptionTokenizer
from ciarsim.nn.device import DeviceConfig, DeviceModel
from ciarsim.nn.gpt import GPT, GPTConfig
from ciarsim.nn.vq import VQConfig, VQModel

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "models" / "shapes-256"
STORE_DTYPE = torch.float16
KINDS = ("tokenizer", "cloud", "device")
REBUILD = {k: f"ciarsim train {k}" for k in KINDS}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: Path, expected: str | None, kind: str, fix: str) -> None:
    """Raise ``CheckpointError`` unless the file's SHA-256 is ``expected`` (its card's)."""
    found = sha256_file(path)
    if found != expected:
        raise CheckpointError(f"{kind} weights {path} are corrupted: sha256 expected {expected}, "
                              f"found {found}; {fix}")


def software_versions() -> dict:
    import ciarsim

    return {"torch": torch.__version__, "python": platform.python_version(),
            "ciarsim": getattr(ciarsim, "__version__", "unknown")}


def build_model(kind: str, config: dict) -> torch.nn.Module:
    """A freshly initialised model of ``kind`` from its card's config dict."""
    if kind == "tokenizer":
        return VQModel(VQConfig(**config))
    if kind == "cloud":
        return GPT(GPTConfig(**config))
    if kind == "device":
        return DeviceModel(DeviceConfig.from_dict(config))
    raise CheckpointError(f"unknown checkpoint kind {kind!r}; expected one of {KINDS}")


def save_checkpoint(model: torch.nn.Module, out_dir: Path, kind: str, card: dict) -> dict:
    """Write ``{kind}.safetensors`` and ``{kind}.json``; returns the card (with sha256, versions)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{kind}.safetensors"
    tensors = {k: v.detach().to(STORE_DTYPE).contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = weights.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp), metadata={"kind": kind})
    tmp.chmod(0o644)
    tmp.replace(weights)
    card = {"kind": kind, **card, "config": model.cfg.to_dict(), "weights": weights.name,
            "sha256": sha256_file(weights), "dtype": str(STORE_DTYPE).replace("torch.", ""),
            "n_params": sum(p.numel() for p in model.parameters()), "software": software_versions()}
    write_json(out_dir / f"{kind}.json", card)
    return card


def update_card(out_dir: Path, kind: str, **fields) -> dict:
    """Merge fields (e.g. final metrics) into ``{kind}.json`` without touching the weights."""
    path = Path(out_dir) / f"{kind}.json"
    card = read_json(path, kind)
    card.update(fields)
    write_json(path, card)
    return card


def write_json(path: Path, obj: dict) -> None:
    """Write a card as sorted, indented JSON (no NaN), atomically (``ciarsim.io``)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path, kind: str) -> dict:
    if not path.exists():
        raise CheckpointError(f"{kind} card missing: {path} not found; rebuild with `{REBUILD[kind]}`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{kind} card {path} is not valid JSON ({e}); rebuild with `{REBUILD[kind]}`") from e


def link_checkpoint(src_dir: Path, dst_dir: Path, kind: str) -> dict:
    """Make ``dst_dir/{kind}.json`` a verified reference to ``src_dir``'s ``{kind}`` weights (no copy)."""
    import os  # noqa: PLC0415

    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    card = read_json(src_dir / f"{kind}.json", kind)
    weights = src_dir / card.get("weights", f"{kind}.safetensors")
    if sha256_file(weights) != card.get("sha256"):
        raise CheckpointError(f"{kind} weights {weights} do not match their card; cannot reference them")
    dst_dir.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(weights.resolve(), dst_dir.resolve())
    card = {**card, "weights": rel, "reference": {"model_set": os.path.relpath(src_dir.resolve(), dst_dir.resolve()),
                                                  "note": "weights shared with that set, verified by sha256"}}
    write_json(dst_dir / f"{kind}.json", card)
    return card


def load_checkpoint(model_dir: Path, kind: str, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Load ``{kind}`` from ``model_dir``: verify the SHA-256 and every tensor's name and shape.

    Raises CheckpointError (expected vs found, and the command that rebuilds it) on any mismatch."""
    model_dir = Path(model_dir)
    fix = f"rebuild with `{REBUILD.get(kind, 'ciarsim train all')}`"
    card = read_json(model_dir / f"{kind}.json", kind)
    weights = model_dir / card.get("weights", f"{kind}.safetensors")
    if not weights.exists():
        raise CheckpointError(f"{kind} weights missing: {weights} not found; {fix}")
    verify_sha256(weights, card.get("sha256"), kind, fix)
    try:
        model = build_model(kind, card["config"])
    except (TypeError, KeyError) as e:
        raise CheckpointError(f"{kind} card {model_dir / (kind + '.json')} has a bad config ({e}); {fix}") from e
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{kind} weights {weights} unreadable ({e}); {fix}") from e
    check_shapes(model, tensors, kind, weights, fix)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.to(device).eval(), card


def check_shapes(model: torch.nn.Module, tensors: dict, kind: str, path: Path, fix: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    if missing or extra:
        raise CheckpointError(f"{kind} weights {path} do not match the config: missing tensors "
                              f"{missing[:5]}, unexpected tensors {extra[:5]}; {fix}")
    for k, shape in expected.items():
        if found[k] != shape:
            raise CheckpointError(f"{kind} weights {path}: tensor {k!r} expected shape {shape}, "
                                  f"found {found[k]}; {fix}")


@dataclass
class ModelSet:
    """The three decision models plus the aggregate card (policies load this)."""

    tokenizer: VQModel
    cloud: GPT
    device: DeviceModel
    card: dict
    captions: CaptionTokenizer = field(default_factory=CaptionTokenizer)  # the cloud's caption vocabulary (the grammar's unless trained on a folder)
    data: dict = field(default_factory=dict)  # the cloud card's training-data record (source, folder path, ...)
    root: Path | None = None  # the folder the set was loaded from (its classifier lives there too)

    @property
    def classifier_path(self) -> Path | None:
        """The set's attribute classifier (``classifier.safetensors`` beside its models), if any."""
        path = None if self.root is None else self.root / "classifier.safetensors"
        return path if path is not None and path.is_file() else None

    @property
    def cfg_variants(self) -> dict[str, str]:
        """Each uncertainty signal's CFG variant (guided | conditional) as chosen on validation prompts
        and recorded in the card (``interhead.cfg_variant``); the historical default otherwise."""
        from ciarsim.nn.device import DEFAULT_VARIANTS  # noqa: PLC0415

        return {**DEFAULT_VARIANTS, **self.card.get("interhead", {}).get("cfg_variant", {})}


def load_models(model_dir: Path | str = DEFAULT_DIR, device: str = "cpu") -> ModelSet:
    """Load tokenizer, cloud and device from ``model_dir`` (verified); card.json if present."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"model directory {model_dir} not found; build it with `ciarsim train all`")
    loaded = {k: load_checkpoint(model_dir, k, device) for k in KINDS}
    card_path = model_dir / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    return ModelSet(loaded["tokenizer"][0], loaded["cloud"][0], loaded["device"][0], card,
                    caption_tokenizer(loaded["cloud"][1]), loaded["cloud"][1].get("data", {}), model_dir)


def caption_tokenizer(cloud_card: dict) -> CaptionTokenizer:
    """The caption tokenizer a cloud was trained with (its card's ``data.caption_vocab``, if any)."""
    cfg = cloud_card.get("config", {})
    vocab = cloud_card.get("data", {}).get("caption_vocab")
    tok = CaptionTokenizer(cfg.get("cap_len", 40), vocab)
    if "text_vocab_size" in cfg and tok.vocab_size > cfg["text_vocab_size"]:
        raise CheckpointError(f"cloud card: caption vocabulary has {tok.vocab_size} words, the model's text "
                              f"embedding {cfg['text_vocab_size']}; rebuild with `ciarsim train cloud`")
    return tok
