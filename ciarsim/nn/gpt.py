"""Cloud GPT: a small decoder-only text-to-image transformer over VQ codes (LlamaGen-style).

Sequence = [caption tokens (cap_len, the prefix)] + [image tokens (grid*grid)]. The last caption
position predicts image token 0. Llama blocks: RMSNorm, SwiGLU, rotary attention.
Positions: a learned absolute embedding for every position, plus rotary attention where image
tokens use 2-D RoPE (half of each head's dims rotate with the row, half with the column, as in
LlamaGen) and caption tokens get no rotation. Classifier-free guidance (Ho & Salimans 2022) via
condition dropout: a caption is replaced by the all-null caption with probability ``cond_drop``.

The forward accepts optional additive input features (``feats`` [B, T, dim]): the cloud computes
``Decoder(E(x) + f_I)`` when it catches up on a run the device accepted (CIAR, Ye et al., ICLR 2026, arXiv 2603.25463).

References: nanoGPT (Karpathy), LlamaGen (Sun et al. 2024), RoFormer (Su et al. 2021).
Decoding (``new_cache``, ``prefill``, ``decode_step``, ``generate``) are free functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 1024  # image codebook size
    text_vocab_size: int = 64  # caption tokenizer vocabulary; id text_vocab_size is the null token
    cap_len: int = 16  # caption prefix length
    grid: int = 16  # image tokens per side
    dim: int = 192
    n_layer: int = 6
    n_head: int = 6
    ffn_hidden: int = 512  # SwiGLU hidden width (about 8/3 * dim)
    cond_drop: float = 0.1  # CFG condition dropout during training

    @property
    def n_image(self) -> int:
        return self.grid * self.grid

    @property
    def seq_len(self) -> int:
        return self.cap_len + self.n_image

    @property
    def null_id(self) -> int:
        return self.text_vocab_size

    def to_dict(self) -> dict:
        return asdict(self)


def _preset(**defaults):
    return lambda **kw: GPTConfig(**{**defaults, **kw})


GPT_PRESETS = {
    "tiny": _preset(vocab_size=64, grid=4, dim=32, n_layer=2, n_head=2, ffn_hidden=64),  # tests
    "shapes-256": _preset(dim=192, n_layer=6, n_head=6, ffn_hidden=512),  # ~3.1M params
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(cfg: GPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (seq_len, head_dim/2): caption rows are identity, image rows 2-D (row | col)."""
    hd = cfg.dim // cfg.n_head
    quarter = hd // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter).float() / quarter))  # (hd/4,)
    idx = torch.arange(cfg.n_image)
    row, col = (idx // cfg.grid).float(), (idx % cfg.grid).float()
    ang_img = torch.cat([row[:, None] * freqs, col[:, None] * freqs], dim=-1)  # (n_image, hd/2)
    ang = torch.cat([torch.zeros(cfg.cap_len, 2 * quarter), ang_img], dim=0)  # (seq_len, hd/2)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):  # x (B, nh, T, hs); cos/sin (T, hs/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


class KVCache:
    """Per-layer key/value buffers (L, B, nh, seq_len, hs); ``pos`` = tokens already in it.

    Rolling back is ``cache.pos = n``: later writes overwrite the discarded entries."""

    def __init__(self, cfg: GPTConfig, batch: int, dtype=torch.float32, device="cpu"):
        hs = cfg.dim // cfg.n_head
        shape = (cfg.n_layer, batch, cfg.n_head, cfg.seq_len, hs)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.pos = 0


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.nh, self.hs = cfg.n_head, cfg.dim // cfg.n_head
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, start: int, cache: KVCache | None, layer: int):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, self.hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            assert start == 0
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            end = start + T
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            k, v = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]  # (B, nh, end, hs)
            mask = torch.arange(end, device=x.device)[None, :] <= torch.arange(start, end, device=x.device)[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)
        self.w2 = nn.Linear(cfg.ffn_hidden, cfg.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n1, self.attn = RMSNorm(cfg.dim), Attention(cfg)
        self.n2, self.mlp = RMSNorm(cfg.dim), SwiGLU(cfg)

    def forward(self, x, cos, sin, start, cache, layer):
        x = x + self.attn(self.n1(x), cos, sin, start, cache, layer)
        return x + self.mlp(self.n2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.txt_emb = nn.Embedding(cfg.text_vocab_size + 1, cfg.dim)  # +1: null caption token
        self.pos_emb = nn.Parameter(torch.zeros(cfg.seq_len, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for n, p in self.named_parameters():
            if n.endswith("proj.weight") or n.endswith("w2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """ids (B, T) at absolute positions start.. -> (B, T, dim); caption ids before cap_len."""
        T = ids.shape[1]
        pos = torch.arange(start, start + T, device=ids.device)
        is_img = (pos >= self.cfg.cap_len)[None, :, None]
        x_img = self.tok_emb(ids.clamp(0, self.cfg.vocab_size - 1))
        x_txt = self.txt_emb(ids.clamp(0, self.cfg.text_vocab_size))
        return torch.where(is_img, x_img, x_txt) + self.pos_emb[start:start + T]

    def hidden(self, ids, start: int = 0, cache: KVCache | None = None, feats=None):
        """ids (B, T) -> final-normed hidden states (B, T, dim). ``feats`` (B, T, dim) is added
        to the input embeddings (interval features from the device; zero rows change nothing)."""
        T = ids.shape[1]
        x = self.embed(ids, start)
        if feats is not None:
            x = x + feats
        cos, sin = self.rope_cos[start:start + T], self.rope_sin[start:start + T]
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, start, cache, i)
        if cache is not None:
            cache.pos = start + T
        return self.norm(x)

    def forward(self, ids, start: int = 0, cache: KVCache | None = None, feats=None):
        """ids (B, T) -> logits (B, T, vocab): position t's logits predict the token at t+1."""
        return self.lm_head(self.hidden(ids, start, cache, feats))


# ---------------------------------------------------------------- training helpers

def drop_condition(cap: torch.Tensor, p: float, null_id: int, gen: torch.Generator | None) -> torch.Tensor:
    """Replace each caption row by the null caption with probability p (CFG training)."""
    drop = torch.rand(cap.shape[0], generator=gen) < p
    return torch.where(drop[:, None], torch.full_like(cap, null_id), cap)


def sequence(cap: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Teacher-forcing input: caption (B, Lc) + image codes but the last (B, N-1) -> (B, Lc+N-1)."""
    return torch.cat([cap, img[:, :-1]], dim=1)


def image_logits(model: GPT, cap, img, feats=None) -> torch.Tensor:
    """Teacher-forced logits for every image token, (B, N, vocab)."""
    return model(sequence(cap, img), feats=feats)[:, model.cfg.cap_len - 1:]


def lm_loss(model: GPT, cap, img, feats=None) -> torch.Tensor:
    logits = image_logits(model, cap, img, feats)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), img.reshape(-1))


# ---------------------------------------------------------------- decoding (free functions)

def with_null(cap: torch.Tensor, null_id: int) -> torch.Tensor:
    """(B, Lc) -> (2B, Lc): conditional rows first, then null-caption rows (for CFG)."""
    return torch.cat([cap, torch.full_like(cap, null_id)], dim=0)


def cfg_mix(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """(2B, ...) conditional|unconditional logits -> (B, ...) guided logits."""
    c, u = logits.chunk(2, dim=0)
    return u + scale * (c - u)


def new_cache(model: GPT, batch: int) -> KVCache:
    p = next(model.parameters())
    return KVCache(model.cfg, batch, dtype=p.dtype, device=p.device)


@torch.no_grad()
def prefill(model: GPT, cap: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Run the caption prefix (B, Lc) into an empty cache; logits for image token 0, (B, vocab)."""
    return model(cap, 0, cache)[:, -1]


@torch.no_grad()
def decode_step(model: GPT, tokens: torch.Tensor, cache: KVCache, feats=None) -> torch.Tensor:
    """Append k image tokens (B, k) at cache.pos (optionally with features (B, k, dim)).

    Returns logits (B, k, vocab): row i predicts the token after tokens[:, i]. With k > 1 this
    is the verification pass of speculative decoding; it equals k single steps."""
    return model(tokens, cache.pos, cache, feats)


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
           gen: torch.Generator | None = None, greedy: bool = False) -> torch.Tensor:
    """logits (B, V) -> token ids (B,). top_k = 0 keeps all."""
    if greedy or temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


@torch.no_grad()
def generate(model: GPT, cap: torch.Tensor, cfg_scale: float = 3.0, temperature: float = 1.0,
             top_k: int = 0, gen: torch.Generator | None = None, greedy: bool = False) -> torch.Tensor:
    """Sample image codes (B, n_image) for captions (B, Lc) with CFG (scale 1 = no guidance)."""
    use_cfg = cfg_scale != 1.0
    ids = with_null(cap, model.cfg.null_id) if use_cfg else cap
    cache = new_cache(model, ids.shape[0])
    logits = prefill(model, ids, cache)
    out = []
    for t in range(model.cfg.n_image):
        lg = cfg_mix(logits, cfg_scale) if use_cfg else logits
        tok = sample(lg, temperature, top_k, gen, greedy)  # (B,)
        out.append(tok)
        if t + 1 < model.cfg.n_image:
            step = torch.cat([tok, tok]) if use_cfg else tok
            logits = decode_step(model, step[:, None], cache)[:, -1]
    return torch.stack(out, dim=1)
