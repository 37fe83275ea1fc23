"""The trace cache: each image is decoded once per policy setting and replayed many times.

A trace set's key hashes everything that determines the decisions and nothing that only changes
timing: the policy's parameters (not its display label), the checkpoint hashes, the prompts (start,
count, token grid), the decision seed, and the code version of the decision layer (a hash of the
``ciarsim/nn`` and ``ciarsim/policies`` sources, so editing a policy invalidates its traces).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ciarsim import __version__
from ciarsim.trace import TRACE_VERSION, TraceSet

_PACKAGE = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def decision_code_version() -> str:
    """``<version>+<sha256 prefix>`` of the decision layer's source files."""
    h = hashlib.sha256()
    for sub in ("nn", "policies"):
        for path in sorted((_PACKAGE / sub).rglob("*.py")):
            h.update(path.relative_to(_PACKAGE).as_posix().encode())
            h.update(path.read_bytes())
    h.update(str(TRACE_VERSION).encode())
    return f"{__version__}+{h.hexdigest()[:12]}"


def trace_key(policy: dict[str, Any], prompts: dict[str, Any], checkpoints: dict[str, str],
              seed: int) -> str:
    """A 24-hex-digit key for one (policy setting, prompt batch, models, seed)."""
    policy = {k: v for k, v in policy.items() if k != "label"}
    if policy.get("name") == "plugin":  # an external protocol: key by its source as well
        from ciarsim.policies.plugin import source_digest  # noqa: PLC0415

        policy["protocol_source_sha256"] = source_digest(policy["protocol"])
    blob = json.dumps(
        {"policy": policy, "prompts": prompts, "checkpoints": checkpoints, "seed": seed,
         "code": decision_code_version()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class TraceCache:
    """Trace sets on disk under ``root``, one ``<key>.npz`` each, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get_or_decode(self, key: str, decode: Callable[[], TraceSet]) -> TraceSet:
        """The cached trace set for ``key``, decoding and storing it first if absent."""
        path = self.path(key)
        if path.exists():
            self.hits += 1
            return TraceSet.load(path)
        self.misses += 1
        traces = decode()
        traces.save(path)
        return traces
