"""The trace cache: each image is decoded once per policy setting and replayed many times.

A trace set's key hashes everything that determines the decisions and nothing that only changes
timing: the policy's parameters (not its display label), the content hashes of the model set's files
(``provenance.checkpoint_digests``), the prompts (start, count, token grid), the decision seed, and
the code version of the decision layer (a hash of every file under ``ciarsim/nn`` and
``ciarsim/policies`` and of the trace format, so editing a policy invalidates its traces).

A model set may ship decoded traces in its ``traces/`` folder (``shipped_dir``), named by the same
keys: the cache reads them when its own folder lacks a key, and never writes there. A shipped file
is used only when its key matches, i.e. when models, prompts, policy, seed and code are the ones
that made it; otherwise the trace is decoded as usual.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from ciarsim.runner.provenance import PACKAGE, package_files, tree_version
from ciarsim.trace import TRACE_VERSION, TraceSet


def decision_code_version() -> str:
    """``<version>+<sha256 prefix>`` of the decision layer's files and the trace format."""
    return tree_version(PACKAGE, package_files(PACKAGE, ("nn", "policies")), str(TRACE_VERSION))


def trace_key(policy: dict[str, Any], prompts: dict[str, Any], checkpoints: dict[str, str],
              seed: int, code: str | None = None) -> str:
    """A 24-hex-digit key for one (policy setting, prompt batch, models, seed); ``code`` is the
    ``decision_code_version()`` (computed here when not given)."""
    policy = {k: v for k, v in policy.items() if k != "label"}
    if policy.get("name") == "plugin":  # an external protocol: key by its source as well
        from ciarsim.policies.plugin import source_digest  # noqa: PLC0415

        policy["protocol_source_sha256"] = source_digest(policy["protocol"])
    blob = json.dumps(
        {"policy": policy, "prompts": prompts, "checkpoints": checkpoints, "seed": seed,
         "code": code or decision_code_version()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def shipped_dir(checkpoints: str | Path) -> Path:
    """Where a model set ships decoded traces: ``<checkpoints>/traces``."""
    return Path(checkpoints) / "traces"


class TraceCache:
    """Trace sets on disk under ``root``, one ``<key>.npz`` each, written atomically; read-only
    ``shipped`` folders are looked in when ``root`` lacks a key."""

    def __init__(self, root: str | Path, shipped: tuple[str | Path, ...] = ()) -> None:
        self.root = Path(root)
        self.shipped = tuple(Path(s) for s in shipped)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        """The file holding ``key``: in ``root``, else in a shipped folder that has it, else the
        ``root`` path it would be written to."""
        own = self.root / f"{key}.npz"
        if own.exists():
            return own
        return next((p for p in (s / f"{key}.npz" for s in self.shipped) if p.exists()), own)

    def get_or_decode(self, key: str, decode: Callable[[], TraceSet]) -> TraceSet:
        """The cached trace set for ``key``, decoding and storing it (in ``root``) first if absent."""
        path = self.path(key)
        if path.exists():
            self.hits += 1
            return TraceSet.load(path)
        self.misses += 1
        traces = decode()
        traces.save(path)
        return traces
