"""The card's measurements on teacher-forced sequences: AUROC, device-only greedy decoding, every
uncertainty signal in both CFG variants with the rejection label, the variant choice rule, and
bootstrap intervals over prompts.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ciarsim.nn.device import (
    CFG_VARIANTS, DEFAULT_VARIANTS, SIGNALS, DeviceModel, device_prefill, device_step, guide, new_device_cache,
    signal_score,
)  # fmt: skip
from ciarsim.nn.gpt import GPT, cfg_mix, sequence, with_null


def auroc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if one class."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # average rank of a tie group = (first + last) / 2, 1-based
    ranks = (upper - (counts - 1) / 2.0)[inv]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@torch.no_grad()
def device_generate(dev: DeviceModel, cap: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Device-only greedy decoding with CFG on the centre logits, (B, n_image)."""
    ids = with_null(cap, dev.cfg.cloud.null_id)
    cache = new_device_cache(dev, ids.shape[0])
    out = device_prefill(dev, ids, cache)
    toks = []
    for t in range(dev.cfg.cloud.n_image):
        tok = guide(out, cfg_scale).c[:, -1].argmax(-1)  # (B,)
        toks.append(tok)
        if t + 1 < dev.cfg.cloud.n_image:
            out = device_step(dev, torch.cat([tok, tok])[:, None], cache)
    return torch.stack(toks, 1)


@torch.no_grad()
def teacher_forced_raw(cloud: GPT, dev: DeviceModel, cap, codes, batch: int = 16):
    """Teacher-force cloud and device on given image codes, ``batch`` prompts at a time, both with
    caption and null caption: yields the cloud's raw cond|uncond logits (2b, N, V) and the device's
    raw cond|uncond outputs (2b, N, ...)."""
    Lc, null = cloud.cfg.cap_len, cloud.cfg.null_id
    for i in range(0, cap.shape[0], batch):
        seq = sequence(with_null(cap[i:i + batch], null), codes[i:i + batch].repeat(2, 1))
        yield cloud(seq)[:, Lc - 1:].float(), dev(seq).positions(Lc - 1)


@torch.no_grad()
def teacher_forced_batches(cloud: GPT, dev: DeviceModel, cap, codes, cfg_scale: float, batch: int = 16):
    """As ``teacher_forced_raw``, with the cloud's CFG-guided next-token p (b, N, V)."""
    for logits, out in teacher_forced_raw(cloud, dev, cap, codes, batch):
        yield F.softmax(cfg_mix(logits, cfg_scale), -1), out


def greedy_rejection(p: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The device's greedy proposal x = argmax q (..., 1) and the card's label: would the exact
    speculative check more likely reject it, 1 - min(1, p(x)/q(x)) > 0.5 (...)."""
    x = q.argmax(-1, keepdim=True)
    ratio = (p.gather(-1, x) / q.gather(-1, x)).squeeze(-1)
    return x, 1 - ratio.clamp(max=1.0) > 0.5


def teacher_forced_signals(cloud: GPT, dev: DeviceModel, cap, codes, cfg_scale: float, batch: int = 16) -> dict:
    """Per prompt and image position on given sequences, arrays (n_prompts, N): greedy agreement
    with CFG (``agree``) and on the caption branch alone (``agree_caption``), the rejection label
    (device greedy token x, p cloud, q device p_mid, both guided), and every uncertainty signal in
    both CFG variants (``"{signal}/{variant}"``, ``device.signal_score``)."""
    cols: dict[str, list] = {}
    for logits, out in teacher_forced_raw(cloud, dev, cap, codes, batch):
        p = F.softmax(cfg_mix(logits, cfg_scale), -1)
        q = F.softmax(cfg_mix(out.c, cfg_scale), -1)
        x, reject = greedy_rejection(p, q)
        row = {"agree": x.squeeze(-1) == p.argmax(-1), "reject": reject,
               "agree_caption": out.c.chunk(2)[0].argmax(-1) == logits.chunk(2)[0].argmax(-1)}
        for sig in SIGNALS:
            for var in CFG_VARIANTS:
                row[f"{sig}/{var}"] = signal_score(out, cfg_scale, sig, var)
        for k, v in row.items():
            cols.setdefault(k, []).append(v)
    return {k: torch.cat(v).float().numpy() if k not in ("agree", "reject", "agree_caption")
            else torch.cat(v).numpy() for k, v in cols.items()}


def choose_variants(sig: dict) -> dict[str, dict]:
    """The selection rule, the same for every signal: the CFG variant with the higher AUROC against
    the rejection label (what a gate is for) on the given (validation) signals; ties -> guided;
    not measurable (one class only) -> ``DEFAULT_VARIANTS``."""
    out = {}
    for name in SIGNALS:
        a = {v: auroc(sig[f"{name}/{v}"].ravel(), sig["reject"].ravel()) for v in CFG_VARIANTS}
        best = ("conditional" if a["conditional"] > a["guided"] else "guided" if a["guided"] >= a["conditional"]
                else DEFAULT_VARIANTS[name])
        out[name] = {"variant": best, **{f"auroc_reject_{v}": json_float(a[v]) for v in CFG_VARIANTS}}
    return out


def bootstrap_ci(stat: Callable, arrays: list, reps: int = 200, seed: int = 0) -> list[float]:
    """95% percentile interval of ``stat(*arrays)`` resampling prompts (the arrays' first axis)."""
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    vals = np.array([stat(*(a[idx] for a in arrays)) for idx in (rng.integers(0, n, n) for _ in range(reps))])
    if not np.isfinite(vals).any():
        return [None, None]
    lo, hi = np.nanpercentile(vals, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def mean_ci(x: np.ndarray, seed: int) -> dict:
    return {"mean": round(float(x.mean()), 4), "ci95": bootstrap_ci(lambda a: a.mean(), [x], seed=seed)}


def auroc_flat(s, y) -> float:
    return auroc(s.ravel(), y.ravel())



def json_float(x: float) -> float | None:
    """Rounded float, or None for nan (JSON has no nan)."""
    return None if x != x else round(float(x), 4)
