"""Content identities of everything a result depends on: code, package data, models, traces.

Results parts and cached trace sets are keyed by the SHA-256 of the *bytes* that determined them,
never by a path, so retraining a model set in place, editing ``ciarsim/data/hardware.json`` or a
GPU profile, or replacing a capacity-trace file is always a cache miss:

- ``code_version``: every file of the package (``*.py`` and the data files under ``data/``);
- ``checkpoint_digests``: every card (``*.json``) and weights file (``*.safetensors``) of the
  model set, and the ``captions.csv`` a folder-trained set draws its prompts from;
- ``capacity_trace_digests``: the uplink and downlink trace files of a ``capacity: trace`` network.

A file is hashed once per process and content: ``file_digest`` remembers digests by
(path, mtime, size). ``dirty_tree`` says whether the package's git checkout has uncommitted
changes (None outside git); it is recorded with each part, never part of a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Iterable

from ciarsim import __version__

PACKAGE = Path(__file__).resolve().parent.parent
MISSING = "missing"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's bytes, ``"missing"`` if it is not a file."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError:
        return MISSING
    if not path.is_file():
        return MISSING
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def package_files(root: Path, subdirs: Iterable[str] = ("",)) -> list[Path]:
    """Every source and data file under ``root / sub`` (caches and bytecode left out), sorted."""
    files = []
    for sub in subdirs:
        for path in (root / sub).rglob("*"):
            if path.is_file() and path.suffix not in _SKIP_SUFFIXES and not (
                _SKIP_DIRS & set(path.relative_to(root).parts)
            ):
                files.append(path)
    return sorted(files)


def tree_version(root: Path, files: Iterable[Path], *extra: str) -> str:
    """``<version>+<12 hex digits>`` over the relative names and contents of ``files``."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + file_digest(path).encode())
    for item in extra:
        h.update(item.encode())
    return f"{__version__}+{h.hexdigest()[:12]}"


def code_version(root: Path | None = None) -> str:
    """The identity of the whole package: every ``*.py`` and data file under ``root``."""
    root = root or PACKAGE
    return tree_version(root, package_files(root))


def dirty_tree(root: Path | None = None) -> bool | None:
    """True if git reports uncommitted changes under ``root`` (the package), False if clean,
    None when that cannot be told (no git, not a checkout, an installed wheel)."""
    root = root or PACKAGE
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "."], cwd=root, capture_output=True,
            text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return bool(out.stdout.strip())


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


def capacity_trace_digests(network) -> dict[str, str]:
    """SHA-256 of the uplink and downlink trace files of a ``capacity: trace`` NetworkConfig
    (relative paths as the link reads them); empty for every other capacity model."""
    if network.capacity != "trace":
        return {}
    return {name: file_digest(getattr(network, name)) for name in ("uplink_trace", "downlink_trace")}
