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
import subprocess
from pathlib import Path
from typing import Iterable

from ciarsim import __version__
from ciarsim.io import MISSING, file_digest  # noqa: F401 - re-exported
from ciarsim.nn.digests import checkpoint_digests  # noqa: F401 - re-exported

PACKAGE = Path(__file__).resolve().parent.parent
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


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


def capacity_trace_digests(network) -> dict[str, str]:
    """SHA-256 of the uplink and downlink trace files of a ``capacity: trace`` NetworkConfig
    (relative paths as the link reads them); empty for every other capacity model."""
    if network.capacity != "trace":
        return {}
    return {name: file_digest(getattr(network, name)) for name in ("uplink_trace", "downlink_trace")}
