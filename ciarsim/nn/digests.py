"""The content identity of a model set: SHA-256 of its files (no torch, so the runner can key
caches and results by it without loading a model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ciarsim.io import file_digest


def checkpoint_digests(checkpoints: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every card and weights file of the model set in ``checkpoints`` (by file
    name), and of the captions.csv its cloud was trained on (key ``prompts_csv``), if any."""
    root = Path(checkpoints)
    files = sorted(root.glob("*.json")) + sorted(root.glob("*.safetensors"))
    digests = {path.name: file_digest(path) for path in files}
    cloud = root / "cloud.json"
    if cloud.is_file():
        try:
            folder = json.loads(cloud.read_text()).get("data", {}).get("path")
        except (json.JSONDecodeError, AttributeError):
            folder = None  # the decoder reports a broken card
        if folder:
            digests["prompts_csv"] = file_digest(Path(folder) / "captions.csv")
    return digests
