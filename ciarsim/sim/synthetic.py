"""Deterministic synthetic decode traces shaped like CIAR's, for tests and benchmarks.

Per image: the cloud prefills the text and generates a prefix of ``prefix`` tokens (prompt
uploaded); the device prefills the text and the prefix tokens, then generates the rest token by
token; at ``calls`` uncertain positions (drawn without replacement from
``default_rng([seed, image])``) it uploads the tokens and interval features accepted since the
last sync plus the uncertain token, and the cloud verifies them in ONE pass of ``run + 1``
tokens and sends one token back, replacing it with probability ``changed_frac``. Not a model's
output: a stand-in with the right op structure.
"""

from __future__ import annotations

import numpy as np

from ciarsim.trace import (
    OP_DTYPE, SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT, SOURCE_DEVICE_VERIFIED,
    ImageTrace, TraceSet, cloud_op, device_op,
)  # fmt: skip


def ciar_like_image(
    image: int,
    *,
    tokens: int = 256,
    prefix: int = 15,
    calls: int = 70,
    changed_frac: float = 0.3,
    seed: int = 0,
) -> ImageTrace:
    """One CIAR-shaped image trace (see the module docstring)."""
    rng = np.random.default_rng([seed, image])
    uncertain = np.sort(rng.choice(np.arange(prefix, tokens), size=calls, replace=False))
    changed = rng.random(calls) < changed_frac
    source = np.full(tokens, SOURCE_DEVICE_KEPT, dtype=np.uint8)
    source[:prefix] = SOURCE_CLOUD
    ops = [
        cloud_op(steps=prefix, new_tokens=1, context=0, tokens_down=prefix, prompt_up=True),
        device_op(steps=1, context=0, new_tokens=prefix, prefill_text=True),
    ]
    pos = prefix
    for u, ch in zip(uncertain.tolist(), changed.tolist()):
        run = u - pos
        ops.append(device_op(steps=run + 1, context=pos))
        ops.append(cloud_op(
            steps=1, new_tokens=run + 1, context=pos, tokens_down=1,
            tokens_up=run + 1, features_up=run, changed=int(ch),
        ))  # fmt: skip
        source[u] = SOURCE_CLOUD_RESAMPLED if ch else SOURCE_DEVICE_VERIFIED
        pos = u + 1
    if pos < tokens:
        ops.append(device_op(steps=tokens - pos, context=pos))
    u_arr = np.where(source == SOURCE_CLOUD, np.nan, rng.random(tokens)).astype(np.float32)
    return ImageTrace(
        image, np.array(ops, dtype=OP_DTYPE), np.zeros(tokens, np.int32), u_arr, source
    )


def ciar_like_traces(n_images: int, **kw) -> TraceSet:
    """``n_images`` CIAR-shaped traces (images 0..n-1) in one set."""
    images = [ciar_like_image(i, **kw) for i in range(n_images)]
    return TraceSet.from_images(images, {"policy": "synthetic-ciar-like", **kw})
