"""CIAR device model: the cloud GPT cut to one layer, with the Inter-Head and phi (Ye et al., ICLR 2026, arXiv 2603.25463, §3).

- Trunk: ``GPT`` with ``n_layer=1``; token, caption and position embeddings, block 0 and the final
  norm are copied from the cloud at initialisation.
- Inter-Head: centre logits c = W_c h (W_c initialised from the cloud's LM head), radius
  r = softplus(W_r h + b_r) >= 0 (b_r starts at ``r_init_bias``, so intervals start narrow).
- InterFuse: interval-softmax bounds computed in log space (``interfuse``); leave-one-out
  log-sum-exps come from prefix/suffix ``logcumsumexp``, so it is exact, stable and O(|V|).
- Uncertainty: delta = p_hi - p_lo, U = ||delta||_1 * std(delta) (population std over |V|).
- phi (choice, the paper is silent): P_t is summarised by a learned linear map of
  [p_lo, p_hi] (2|V| -> ``summary_dim``), then f_I = W2 silu(W1 [h_t, summary]) with W2
  zero-initialised, so injecting f_I leaves the cloud unchanged at initialisation. The feature for
  image position t comes from the device's own state at position t (its h_t and interval for the
  token after x_t) and is added to the cloud's input embedding of x_t.
- CFG (choice, ``guide``, ``signal_score``): the proposal uses the guided centre
  c_g = c_u + s (c_c - c_u). Each uncertainty signal (U, entropy, 1 - max prob) is scored either on
  the guided proposal (for U: the interval propagated by interval arithmetic, r_g = s r_c +
  |s - 1| r_u) or on the caption branch alone; which one is chosen per signal by one rule on the
  validation prompts (``train.choose_variants``: the higher AUROC against the rejection label) and
  recorded in the model set's card (``interhead.cfg_variant``), which the policies' gates follow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ciarsim.nn.gpt import GPT, GPTConfig, KVCache, cfg_mix


@dataclass(frozen=True)
class DeviceConfig:
    cloud: GPTConfig = field(default_factory=GPTConfig)
    n_layer: int = 1
    summary_dim: int = 64
    phi_hidden: int = 256
    r_init_bias: float = -2.0

    @property
    def trunk(self) -> GPTConfig:
        return replace(self.cloud, n_layer=self.n_layer)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceConfig":
        d = dict(d)
        return cls(cloud=GPTConfig(**d.pop("cloud")), **d)


def loo_logsumexp(x: torch.Tensor) -> torch.Tensor:
    """log sum_{j != i} exp(x_j) for every i along the last dim, without cancellation.

    With m = max(x) at position k and S = sum_j exp(x_j - m) >= 1: for i != k the sum without
    x_i is S - exp(x_i - m) >= 1 (x_k's own term stays in it), so the subtraction loses at most a
    factor-2 of relative precision; for i = k it is the logsumexp with x_k masked out. Ten times
    faster on a CPU than two logcumsumexp scans, and as exact (tests compare against float64)."""
    m, k = x.max(-1, keepdim=True)  # (..., 1)
    e = torch.exp(x - m)
    rest = (e.sum(-1, keepdim=True) - e).scatter(-1, k, 1.0)  # at k a dummy 1: its log never flows back
    at_max = torch.logsumexp(x.scatter(-1, k, float("-inf")), -1, keepdim=True)
    return (torch.log(rest) + m).scatter(-1, k, at_max)


def interfuse(c: torch.Tensor, r: torch.Tensor):
    """Centre/radius logits (..., V) -> (log p_lo, log p_mid, log p_hi), each (..., V).

    p_lo_i = e^(c_i-r_i) / (e^(c_i-r_i) + sum_{j!=i} e^(c_j+r_j)), p_hi symmetric, p_mid = softmax(c)."""
    lo, hi = c - r, c + r
    log_p_lo = lo - torch.logaddexp(lo, loo_logsumexp(hi))
    log_p_hi = hi - torch.logaddexp(hi, loo_logsumexp(lo))
    return log_p_lo, F.log_softmax(c, -1), log_p_hi


def uncertainty(p_lo: torch.Tensor, p_hi: torch.Tensor) -> torch.Tensor:
    """U = ||p_hi - p_lo||_1 * std(p_hi - p_lo) over the last dim (probabilities, not logs)."""
    delta = p_hi - p_lo
    return delta.sum(-1) * delta.std(-1, unbiased=False)


@dataclass
class DeviceOut:
    """One or more device positions: everything a policy needs. Shapes (B, k, V) / (B, k)."""

    h: torch.Tensor | None  # (B, k, dim) trunk hidden (None after ``guide``)
    c: torch.Tensor
    r: torch.Tensor
    log_p_lo: torch.Tensor
    log_p_mid: torch.Tensor
    log_p_hi: torch.Tensor
    U: torch.Tensor

    def positions(self, start: int, end: int | None = None) -> "DeviceOut":
        """The same outputs restricted to sequence positions start..end-1."""
        return DeviceOut(*(None if t is None else t[:, start:end] for t in (
            self.h, self.c, self.r, self.log_p_lo, self.log_p_mid, self.log_p_hi, self.U)))

    @property
    def p_lo(self):
        return self.log_p_lo.exp()

    @property
    def p_mid(self):
        return self.log_p_mid.exp()

    @property
    def p_hi(self):
        return self.log_p_hi.exp()


def head_out(h: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> DeviceOut:
    lo, mid, hi = interfuse(c, r)
    return DeviceOut(h, c, r, lo, mid, hi, uncertainty(lo.exp(), hi.exp()))


class Phi(nn.Module):
    """Interval features f_I = phi(concat(h_t, summary(P_t))) -> cloud width; output layer zero-init."""

    def __init__(self, cfg: DeviceConfig):
        super().__init__()
        V, D = cfg.cloud.vocab_size, cfg.cloud.dim
        self.summary = nn.Linear(2 * V, cfg.summary_dim)
        self.w1 = nn.Linear(D + cfg.summary_dim, cfg.phi_hidden)
        self.w2 = nn.Linear(cfg.phi_hidden, D)
        nn.init.zeros_(self.w2.weight)
        nn.init.zeros_(self.w2.bias)

    def forward(self, h, p_lo, p_hi):  # (B, T, D), (B, T, V), (B, T, V) -> (B, T, D)
        s = self.summary(torch.cat([p_lo, p_hi], -1))
        return self.w2(F.silu(self.w1(torch.cat([h, s], -1))))


class DeviceModel(nn.Module):
    def __init__(self, cfg: DeviceConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = GPT(cfg.trunk)  # trunk.lm_head is W_c
        self.head_r = nn.Linear(cfg.cloud.dim, cfg.cloud.vocab_size)
        nn.init.normal_(self.head_r.weight, std=0.002)
        nn.init.constant_(self.head_r.bias, cfg.r_init_bias)
        self.phi = Phi(cfg)

    @torch.no_grad()
    def init_from_cloud(self, cloud: GPT) -> None:
        """Copy embeddings, the first ``n_layer`` blocks, final norm and LM head from the cloud."""
        own = self.trunk.state_dict()
        own.update({k: v for k, v in cloud.state_dict().items() if k in own})
        self.trunk.load_state_dict(own)

    def forward(self, ids, start: int = 0, cache: KVCache | None = None) -> DeviceOut:
        """ids (B, T) at absolute positions start.. -> DeviceOut with (B, T, ...) fields."""
        h = self.trunk.hidden(ids, start, cache)  # (B, T, D)
        c = self.trunk.lm_head(h)  # (B, T, V)
        r = F.softplus(self.head_r(h))  # (B, T, V)
        return head_out(h, c, r)

    def features(self, out: DeviceOut) -> torch.Tensor:
        """Interval features f_I (B, T, cloud dim) for the positions in ``out``."""
        return self.phi(out.h, out.p_lo, out.p_hi)


# ---------------------------------------------------------------- decoding (free functions)

def new_device_cache(dev: DeviceModel, batch: int) -> KVCache:
    p = next(dev.parameters())
    return KVCache(dev.cfg.trunk, batch, dtype=p.dtype, device=p.device)


@torch.no_grad()
def device_prefill(dev: DeviceModel, cap: torch.Tensor, cache: KVCache) -> DeviceOut:
    """Caption prefix (B, Lc) into an empty cache -> DeviceOut for image token 0, fields (B, 1, ...)."""
    return dev(cap, 0, cache).positions(-1)


@torch.no_grad()
def device_step(dev: DeviceModel, tokens: torch.Tensor, cache: KVCache) -> DeviceOut:
    """Append k tokens (B, k) at cache.pos -> DeviceOut (B, k, ...): row i is about the next token."""
    return dev(tokens, cache.pos, cache)


SIGNALS = ("interval", "entropy", "max_prob")  # the device-side uncertainty signals
CFG_VARIANTS = ("guided", "conditional")
# Historical default for a model set whose card records no choice: U of the conditional branch,
# entropy and max prob of the guided proposal.
DEFAULT_VARIANTS = {"interval": "conditional", "entropy": "guided", "max_prob": "guided"}


def signal_score(out: "DeviceOut", scale: float, signal: str, variant: str) -> torch.Tensor:
    """One uncertainty signal of a (2B, ...) cond|uncond DeviceOut under CFG -> (B, k).

    ``variant``: ``guided`` scores the guided proposal c_g = c_u + s (c_c - c_u) (for U: the interval
    propagated through the guidance, radius s r_c + |s - 1| r_u); ``conditional`` scores the
    caption branch alone (its centre, or the interval Inter-DRO trains). Higher = less certain."""
    if variant not in CFG_VARIANTS:
        raise ValueError(f"unknown CFG variant {variant!r}; expected one of {CFG_VARIANTS}")
    if signal == "interval":
        if variant == "conditional":
            return out.U.chunk(2, dim=0)[0]
        rc, ru = out.r.chunk(2, dim=0)
        return head_out(None, cfg_mix(out.c, scale), scale * rc + abs(scale - 1) * ru).U
    c = cfg_mix(out.c, scale) if variant == "guided" else out.c.chunk(2, dim=0)[0]
    log_q = F.log_softmax(c, -1)
    if signal == "entropy":
        return -(log_q.exp() * log_q).sum(-1)
    if signal == "max_prob":
        return 1 - log_q.max(-1).values.exp()
    raise ValueError(f"unknown signal {signal!r}; expected one of {SIGNALS}")


@dataclass
class Guided:
    """CFG-guided device positions: what a policy proposes from and what it thresholds, (B, k, ...)."""

    c: torch.Tensor  # (B, k, V) guided centre logits c_u + s (c_c - c_u)
    U: torch.Tensor  # (B, k) uncertainty, of the CFG variant chosen for U (default: conditional branch)
    c_cond: torch.Tensor | None = None  # (B, k, V) the caption branch's centre logits

    @property
    def log_p_mid(self):  # the proposal distribution, computed only where asked for (not per decode step)
        return F.log_softmax(self.c, -1)

    @property
    def p_mid(self):
        return F.softmax(self.c, -1)


def guide(out: DeviceOut, scale: float, u_variant: str = "conditional") -> Guided:
    """CFG on a (2B, ...) cond|uncond DeviceOut -> (B, ...): guided centre, U of ``u_variant``."""
    U = signal_score(out, scale, "interval", u_variant)
    return Guided(cfg_mix(out.c, scale), U, out.c.chunk(2, dim=0)[0])


# ---------------------------------------------------------------- Inter-DRO loss (CIAR, arXiv 2603.25463)

@dataclass(frozen=True)
class InterDROWeights:
    lambda_v: float = 1.0  # L1 anchor weight
    lambda_p: float = 1.0  # CE anchor weight
    lambda_b: float = 1.0  # KL(p_cloud || p_mid) alignment weight
    lambda_dro: float = 1.0  # DRO on the lower bound
    alpha: float = 1.0  # DRO temperature: w = softmax(alpha * CE_n) over the batch's tokens
    lambda_phi: float = 1.0  # cloud next-token loss on the injected run (trains phi)
    # Guidance-consistent distillation (issue 17): weight of each of three KL(cloud || device centre)
    # terms, guided, caption branch and null branch. > 0 also runs every image with both captions.
    lambda_kl: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _anchor(log_p, p_cloud, w: InterDROWeights):
    l1 = (log_p.exp() - p_cloud).abs().sum(-1).mean()
    ce = -(p_cloud * log_p).sum(-1).mean()
    return w.lambda_v * l1 + w.lambda_p * ce


def inter_dro_loss(out: DeviceOut, log_p_cloud: torch.Tensor, w: InterDROWeights) -> dict:
    """Loss terms of Inter-DRO for teacher-forced positions; log_p_cloud (..., V) from the frozen cloud."""
    p_cloud = log_p_cloud.exp()
    terms = {
        "anchor_mid": _anchor(out.log_p_mid, p_cloud, w),
        "anchor_hi": _anchor(out.log_p_hi, p_cloud, w),
        "anchor_lo": _anchor(out.log_p_lo, p_cloud, w),
        "align": w.lambda_b * (p_cloud * (log_p_cloud - out.log_p_mid)).sum(-1).mean(),
    }
    ce_lo = -(p_cloud * out.log_p_lo).sum(-1).flatten()  # (N,)
    weights = F.softmax(w.alpha * ce_lo.detach(), dim=0)
    terms["dro_lo"] = w.lambda_dro * (weights * ce_lo).sum()
    terms["total"] = sum(terms.values())
    return terms


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def distill_loss(c_dev: torch.Tensor, logits_cloud: torch.Tensor, scale: float, w: InterDROWeights) -> dict:
    """Guidance-consistent distillation of the centre logits: ``lambda_kl`` x (KL guided + KL caption
    branch + KL null branch) to the frozen cloud. Both (2B, ..., V), caption rows first (``with_null``)."""
    lc, lu = F.log_softmax(logits_cloud, -1).chunk(2)
    dc, du = F.log_softmax(c_dev, -1).chunk(2)
    lg, dg = (F.log_softmax(cfg_mix(x, scale), -1) for x in (logits_cloud, c_dev))
    return {"kl_guided": w.lambda_kl * _kl(lg, dg), "kl_caption": w.lambda_kl * _kl(lc, dc),
            "kl_null": w.lambda_kl * _kl(lu, du)}
