"""VQ image tokenizer: 64x64 RGB -> 16x16 grid of codebook ids (LlamaGen-style, small).

A conv encoder downsamples by 4, a 1x1 conv maps to a low-dimensional code space (default 8),
codes and codebook vectors are l2-normalised (LlamaGen, after "Vector-quantized Image Modeling
with Improved VQGAN", Yu et al. 2022), quantisation is nearest-neighbour by cosine with a
straight-through gradient and a commitment loss (VQ-VAE, van den Oord et al. 2017).
Codebook usage is kept high by initialising the codebook from encoder outputs (k-means++-free,
random sample) and by restarting dead codes from the current batch during training.

Interface: ``encode(images) -> codes [B, 256]``, ``decode_code(codes) -> images [B, 64, 64, 3]
uint8``, ``code_vectors`` (normalised codebook [K, code_dim], for LANTERN's codebook k-NN).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class VQConfig:
    image_size: int = 64
    channels: int = 32  # base width; 2x after the first downsample
    codebook_size: int = 1024
    code_dim: int = 8
    beta: float = 0.25  # commitment weight
    n_res: int = 1  # residual blocks per resolution

    @property
    def grid(self) -> int:
        return self.image_size // 4

    def to_dict(self) -> dict:
        return asdict(self)


VQ_PRESETS = {
    "tiny": lambda: VQConfig(channels=8, codebook_size=64, code_dim=4),  # tests
    "shapes-256": lambda: VQConfig(),  # ~0.3M params
}


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.c1(F.silu(x))))


class Encoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        c = cfg.channels
        layers = [nn.Conv2d(3, c, 4, stride=2, padding=1)]  # /2, patchify-like (cheap on CPU)
        layers += [ResBlock(c) for _ in range(cfg.n_res)]
        layers += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)]  # /4
        layers += [ResBlock(2 * c) for _ in range(cfg.n_res)]
        layers += [nn.SiLU(), nn.Conv2d(2 * c, cfg.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, 3, H, W) -> (B, code_dim, H/4, W/4)
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        c = cfg.channels
        layers = [nn.Conv2d(cfg.code_dim, 2 * c, 3, padding=1)]
        layers += [ResBlock(2 * c) for _ in range(cfg.n_res + 1)]
        layers += [nn.SiLU(), nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1)]  # x2
        layers += [ResBlock(c) for _ in range(cfg.n_res)]
        layers += [nn.SiLU(), nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1)]  # x4
        self.net = nn.Sequential(*layers)

    def forward(self, z):  # (B, code_dim, h, w) -> (B, 3, 4h, 4w) in about [-1, 1]
        return self.net(z)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W, 3] (or float in [-1, 1] [B, 3, H, W]) -> float [B, 3, H, W] in [-1, 1]."""
    if images.dtype == torch.uint8:
        return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return images.float()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    return ((x.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


class VQModel(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.codebook = nn.Parameter(torch.randn(cfg.codebook_size, cfg.code_dim) * 0.1)

    @property
    def code_vectors(self) -> torch.Tensor:
        """The l2-normalised codebook, (K, code_dim)."""
        return F.normalize(self.codebook, dim=-1)

    def quantize(self, z: torch.Tensor):
        """z (B, D, h, w) -> (z_q straight-through (B, D, h, w), ids (B, h*w), loss, z_flat)."""
        B, D, h, w = z.shape
        zf = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, D), dim=-1)  # (B*h*w, D)
        cb = self.code_vectors  # (K, D)
        ids = (zf @ cb.t()).argmax(dim=-1)  # max cosine == min l2 on the sphere
        zq = cb[ids]  # (B*h*w, D)
        loss = F.mse_loss(zq, zf.detach()) + self.cfg.beta * F.mse_loss(zf, zq.detach())
        zq = zf + (zq - zf).detach()  # straight-through
        zq = zq.reshape(B, h, w, D).permute(0, 3, 1, 2)
        return zq, ids.reshape(B, h * w), loss, zf

    def forward(self, images: torch.Tensor):
        """images -> (recon float [B,3,H,W], vq loss, ids [B, h*w], flat normalised latents)."""
        zq, ids, loss, zf = self.quantize(self.encoder(to_float(images)))
        return self.decoder(zq), loss, ids, zf

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 64, 64, 3] or float [B, 3, 64, 64] in [-1, 1] -> code ids int64 [B, 256]."""
        return self.quantize(self.encoder(to_float(images)))[1]

    @torch.no_grad()
    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        """code ids [B, 256] -> uint8 images [B, 64, 64, 3]."""
        g = self.cfg.grid
        zq = self.code_vectors[codes.long()]  # (B, 256, D)
        zq = zq.reshape(codes.shape[0], g, g, -1).permute(0, 3, 1, 2)
        return to_uint8(self.decoder(zq))

    @torch.no_grad()
    def init_codebook(self, zf: torch.Tensor, gen: torch.Generator) -> None:
        """Initialise every code from a random encoder output (flat, normalised, (N, D))."""
        idx = torch.randint(0, zf.shape[0], (self.cfg.codebook_size,), generator=gen)
        self.codebook.copy_(zf[idx] + 0.01 * torch.randn(self.codebook.shape, generator=gen))

    @torch.no_grad()
    def restart_dead(self, usage: torch.Tensor, zf: torch.Tensor, gen: torch.Generator,
                     threshold: float = 1e-3) -> int:
        """Move codes whose usage EMA is below ``threshold`` onto random batch latents."""
        dead = (usage < threshold).nonzero().flatten()
        if dead.numel() == 0:
            return 0
        idx = torch.randint(0, zf.shape[0], (dead.numel(),), generator=gen)
        self.codebook[dead] = zf[idx] + 0.01 * torch.randn((dead.numel(), zf.shape[1]), generator=gen)
        usage[dead] = 1.0 / self.cfg.codebook_size
        return int(dead.numel())


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two uint8 image batches (peak 255), averaged over the whole set."""
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(255.0**2 / mse)).item()


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> float:
    """Share of codebook entries used at least once in ``codes``."""
    return torch.unique(codes).numel() / codebook_size
