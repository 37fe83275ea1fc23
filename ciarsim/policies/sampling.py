"""Sampling primitives shared by every policy: distributions, draws, acceptance, randomness.

All randomness comes from per-image uniform streams keyed by (seed, image index, stream), one
row per token position, so an image's decisions are the same whichever batch it is decoded in.
Draws use the inverse CDF of a float64 distribution with one uniform each.
"""

from __future__ import annotations

import numpy as np
import torch

# Columns of the main per-position uniform stream.
U_DRAFT, U_ACCEPT, U_RESAMPLE, U_CLOUD, U_GATE = range(5)
N_MAIN = 5
STREAM_MAIN, STREAM_UHLM, STREAM_LAG_CHECK = 0, 1, 2  # LAG_CHECK: ciar_batched's own check (main columns)


def uniforms(seed: int, images: np.ndarray, positions: int, stream: int, cols: int) -> np.ndarray:
    """(N, positions, cols) uniforms in [0, 1); image i's block depends only on (seed, i, stream)."""
    return np.stack(
        [np.random.default_rng([seed, int(i), stream]).random((positions, cols)) for i in images]
    )


def to_probs(logits: torch.Tensor, temperature: float, top_k: int, greedy: bool) -> np.ndarray:
    """Guided logits (N, V) -> sampling distribution (N, V) float64 (one-hot if greedy)."""
    logits = logits.double()
    if greedy:
        out = torch.zeros_like(logits)
        out.scatter_(1, logits.argmax(-1, keepdim=True), 1.0)
        return out.numpy()
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.softmax(logits, dim=-1).numpy()


def draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: p (N, V) rows (not necessarily normalised), u (N,) -> ids (N,)."""
    cdf = np.cumsum(p, axis=1)
    idx = (cdf < (u * cdf[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1)


def residual(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """norm(max(0, p - q)) row-wise; where p == q exactly the residual is empty and p is used."""
    r = np.maximum(p - q, 0.0)
    empty = r.sum(axis=1) <= 0
    r[empty] = p[empty]
    return r


def speculative_accept(p_x: np.ndarray, q_x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Leviathan et al.'s rule: keep draft x iff u <= min(1, p(x) / q(x)). Arrays (N,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q_x > 0, p_x / q_x, 1.0)
    return u <= np.minimum(1.0, ratio)


def entropy(q: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, row-wise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, -q * np.log(q), 0.0)
    return terms.sum(axis=1)
