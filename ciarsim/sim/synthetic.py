"""Deterministic synthetic decode traces shaped like CIAR's, for tests and benchmarks.

Per image: the cloud prefills the text and generates a prefix of ``prefix`` tokens (prompt
uploaded); the device prefills the text and the prefix tokens, then generates the rest token by
token; at ``calls`` uncertain positions (drawn without replacement from
``default_rng([seed, image])``) it uploads the tokens and interval features accepted since the
last sync plus the uncertain token, and the cloud verifies them in ONE pass of ``run + 1``
tokens and sends one token back, replacing it with probability ``changed_frac``. Not a model's
output: a stand-in with the right op structure.

``window`` = 0 is stop and wait (a chain, as CIAR runs today). ``window`` = W > 0 is a pipelined
shape (like ``ciar_pipelined``): after sending an uncertain token the device drafts up to W of the
next run's tokens while the answer is in flight (a DEP_NONE device op), then joins the answer; if
the cloud replaced the token, those drafts are marked wasted and drafted again. The final tokens
and sources do not depend on ``window``.
"""

from __future__ import annotations

import numpy as np

from ciarsim.trace import (
    OP_DTYPE, SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT, SOURCE_DEVICE_VERIFIED,
    DEP_NONE, ImageTrace, TraceSet, cloud_op, device_op, join_op,
)  # fmt: skip


def ciar_like_image(
    image: int,
    *,
    tokens: int = 256,
    prefix: int = 15,
    calls: int = 70,
    changed_frac: float = 0.3,
    seed: int = 0,
    window: int = 0,
) -> ImageTrace:
    """One CIAR-shaped image trace (see the module docstring)."""
    rng = np.random.default_rng([seed, image])
    uncertain = np.sort(rng.choice(np.arange(prefix, tokens), size=calls, replace=False))
    changed = rng.random(calls) < changed_frac
    source = np.full(tokens, SOURCE_DEVICE_KEPT, dtype=np.uint8)
    source[:prefix] = SOURCE_CLOUD
    ops = [
        cloud_op(steps=prefix, new_tokens=1, context=0, tokens_down=prefix, prompt_up=True,
                 decided=prefix),
        device_op(steps=1, context=0, new_tokens=prefix, prefill_text=True),
    ]  # fmt: skip
    pos, pending = prefix, None  # pending: (op index, changed) of the answer in flight
    for u, ch in zip(uncertain.tolist(), changed.tolist()):
        run = u - pos
        _draft(ops, pos, run + 1, window, pending)
        ops.append(cloud_op(
            steps=1, new_tokens=run + 1, context=pos, tokens_down=1,
            tokens_up=run + 1, features_up=run, changed=int(ch), decided=1,
        ))  # fmt: skip
        pending = (len(ops) - 1, ch) if window > 0 else None
        source[u] = SOURCE_CLOUD_RESAMPLED if ch else SOURCE_DEVICE_VERIFIED
        pos = u + 1
    if pos < tokens:
        _draft(ops, pos, tokens - pos, window, pending)
    elif pending is not None:
        ops.append(join_op(pending[0]))
    u_arr = np.where(source == SOURCE_CLOUD, np.nan, rng.random(tokens)).astype(np.float32)
    return ImageTrace(
        image, np.array(ops, dtype=OP_DTYPE), np.zeros(tokens, np.int32), u_arr, source
    )


def _draft(ops: list, pos: int, n: int, window: int, pending: tuple | None) -> None:
    """Device ops drafting positions pos .. pos + n - 1: at once (a chain), or with up to
    ``window`` of them overlapping the answer ``pending`` and redrafted if it changed a token."""
    if pending is None:
        ops.append(device_op(steps=n, context=pos))
        return
    ahead = min(window, n)
    ops.append(device_op(steps=ahead, context=pos, dep=DEP_NONE, wasted=pending[1]))
    ops.append(join_op(pending[0]))
    done = 0 if pending[1] else ahead
    if n > done:
        ops.append(device_op(steps=n - done, context=pos + done))


def ciar_like_traces(n_images: int, **kw) -> TraceSet:
    """``n_images`` CIAR-shaped traces (images 0..n-1) in one set; ``kw`` as ``ciar_like_image``."""
    images = [ciar_like_image(i, **kw) for i in range(n_images)]
    return TraceSet.from_images(images, {"policy": "synthetic-ciar-like", **kw})
