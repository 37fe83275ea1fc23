"""Training of the decision models: VQ tokenizer, cloud GPT, device model (Inter-DRO).

Each ``train_*`` function trains one model on ``make_dataset(n, TRAIN_SEED)``, saves it with its
card (``checkpoints.save_checkpoint``), reloads it (fp16-rounded weights) and measures its card
metrics on held-out ``EVAL_SEED`` data. ``train_all`` runs the three in order and writes the
aggregate ``card.json`` and ``CARD.md``. All randomness comes from explicit generators.

    python -m ciarsim.nn.train all --out models/shapes-256 [--preset shapes-256]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ciarsim.errors import CiarsimError
from ciarsim.nn import checkpoints as ck
from ciarsim.nn.data import EVAL_SEED, TRAIN_SEED, CaptionTokenizer, SceneSet, folder_split, make_dataset
from ciarsim.nn.device import (DeviceConfig, DeviceModel, InterDROWeights, device_prefill, device_step, guide,
                               inter_dro_loss, new_device_cache)
from ciarsim.nn.gpt import (GPT, GPT_PRESETS, cfg_mix, drop_condition, generate, lm_loss, sequence,
                            with_null)
from ciarsim.nn.vq import VQ_PRESETS, VQModel, codebook_usage, psnr_db, to_float

Progress = Callable[[str, int, int, dict], None]  # (stage, step, total, metrics)


@dataclass(frozen=True)
class TrainPreset:
    vq: str = "shapes-256"
    gpt: str = "shapes-256"
    n_train: int = 20000  # training scenes (TRAIN_SEED)
    vq_steps: int = 1700
    vq_batch: int = 32
    vq_lr: float = 2e-3
    vq_dec_steps: int = 1700  # decoder-only fine-tuning after the main phase (codes unchanged)
    vq_dec_lr: float = 5e-4
    vq_dec_share: float = 0.5  # decoder-phase time budget = this x the tokenizer budget (extra)
    gpt_steps: int = 2200
    gpt_batch: int = 16  # same tokens/s as batch 8 on this CPU (benchmarks/RESULTS.md)
    gpt_lr: float = 1e-3
    gpt_resume_lr: float = 5e-4
    dev_steps: int = 700
    dev_batch: int = 8
    dev_lr: float = 1e-3
    dro: InterDROWeights = field(default_factory=InterDROWeights)
    n_eval_images: int = 512  # held-out images for PSNR / usage
    n_eval_prompts: int = 200  # held-out captions for generation metrics
    cfg_scale: float = 3.0
    top_k: int = 0
    temperature: float = 1.0
    seed: int = 0


TRAIN_PRESETS = {
    "tiny": TrainPreset(vq="tiny", gpt="tiny", n_train=64, vq_steps=6, vq_dec_steps=3, vq_batch=8, gpt_steps=4,
                        gpt_batch=4, dev_steps=4, dev_batch=4, n_eval_images=16, n_eval_prompts=8),
    # Default Inter-DRO weights (docs/models.md, "Inter-DRO weights"): the L1 anchors dominate. They
    # pull p_hi up and p_lo down only where p_cloud lies outside the interval, so the interval's width
    # learns |p_cloud - p_mid| (the speculative rejection mass); the CE anchor on p_hi (pushes every
    # r up) and the DRO term on p_lo (pushes r to 0 at the hard positions) blur that. Short-run sweep
    # (120 steps, 32 held-out prompts): AUROC(U) 0.81 vs 0.78 for lambda_v=2/lambda_dro=0.1, 0.80
    # with lambda_dro=0.1; entropy 0.79 in every run.
    "shapes-256": TrainPreset(dro=InterDROWeights(lambda_v=10.0, lambda_p=0.1, lambda_dro=0.0)),
    "shapes-256-l1x2": TrainPreset(dro=InterDROWeights(lambda_v=2.0, lambda_dro=0.1)),  # the 2nd shipped variant
    "shapes-256-even": TrainPreset(),  # all Inter-DRO weights 1.0 (the first trained variant)
}


def get_preset(name: str) -> TrainPreset:
    if name not in TRAIN_PRESETS:
        raise CiarsimError(f"unknown training preset {name!r}; expected one of {sorted(TRAIN_PRESETS)}")
    return TRAIN_PRESETS[name]


class Schedule:
    """Linear warm-up, then cosine decay to 10% of ``peak`` over ``steps`` steps or, when
    ``budget_s`` is given, over whichever of the step count and the wall-clock budget ends first
    (the card records the steps actually run)."""

    def __init__(self, steps: int, peak: float, budget_s: float | None = None, warmup: int = 50):
        self.steps, self.peak, self.budget_s, self.warmup = steps, peak, budget_s, min(warmup, steps)
        self.t0 = time.time()

    def frac(self, step: int) -> float:
        f = step / max(1, self.steps)
        return max(f, (time.time() - self.t0) / self.budget_s) if self.budget_s else f

    def done(self, step: int) -> bool:
        return self.frac(step) >= 1.0

    def lr(self, step: int) -> float:
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        return self.peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, self.frac(step)))))


PRECISIONS = ("auto", "fp32", "bf16")


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """'auto' -> bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32."""
    if precision not in PRECISIONS:
        raise CiarsimError(f"train: unknown precision '{precision}', expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if str(device).startswith("cuda") or _cpu_has_bf16() else "fp32"


def autocast(device: str, precision: str):
    """bf16 autocast for the GPT forward passes (weights, optimiser state and losses stay fp32)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _set_lr(opt, lr):
    for g in opt.param_groups:
        g["lr"] = lr


def _report(progress: Progress | None, stage: str, step: int, total: int, metrics: dict):
    if progress is not None:
        progress(stage, step, total, metrics)


CHECKPOINT_EVERY_S = 300.0  # partial checkpoints during long runs (card says "partial": true)


class PartialSaver:
    """Saves ``{kind}.*`` every CHECKPOINT_EVERY_S seconds so a killed run leaves a usable model."""

    def __init__(self, out_dir, kind: str, info: dict):
        self.out_dir, self.kind, self.info, self.last = out_dir, kind, info, time.time()

    def __call__(self, model, step: int) -> None:
        if time.time() - self.last >= CHECKPOINT_EVERY_S:
            training = {**self.info.get("training", {}), "partial": True, "steps": step}
            ck.save_checkpoint(model, self.out_dir, self.kind, {**self.info, "training": training})
            self.last = time.time()


def _batch_idx(gen: torch.Generator, n: int, b: int) -> torch.Tensor:
    return torch.randint(0, n, (b,), generator=gen)


# ---------------------------------------------------------------- training data

def train_scenes(p: TrainPreset, data_dir=None) -> SceneSet:
    """Training scenes: the generator's ``n_train`` TRAIN_SEED scenes, or a user folder's rows
    except its held-out last 10% (captions.csv order)."""
    return folder_split(data_dir)[0] if data_dir else make_dataset(p.n_train, TRAIN_SEED)


def heldout_scenes(n: int, data_dir=None) -> SceneSet:
    """Held-out scenes for the card: ``n`` EVAL_SEED scenes, or all of a user folder's last 10%."""
    return folder_split(data_dir)[1] if data_dir else make_dataset(n, EVAL_SEED)


def data_record(p: TrainPreset, data_dir=None) -> dict:
    """What a checkpoint was trained on (written into its JSON card)."""
    if not data_dir:
        return {"source": "procedural", "train_seed": TRAIN_SEED, "n_train": p.n_train}
    train, held = folder_split(data_dir)
    csv_sha = hashlib.sha256((Path(data_dir) / "captions.csv").read_bytes()).hexdigest()
    return {"source": "folder", "path": str(Path(data_dir).resolve()), "captions_csv_sha256": csv_sha,
            "n_train": len(train.captions), "n_heldout": len(held.captions)}


# ---------------------------------------------------------------- tokenizer

def train_tokenizer(out_dir, preset: str = "shapes-256", device: str = "cpu",
                    progress: Progress | None = None, time_budget_s: float | None = None,
                    data_dir=None) -> dict:
    """Train the VQ tokenizer; save ``tokenizer.*`` in out_dir; return its card."""
    p, t0 = get_preset(preset), time.time()
    gen = torch.Generator().manual_seed(p.seed)
    images = torch.from_numpy(train_scenes(p, data_dir).images)
    model = VQModel(VQ_PRESETS[p.vq]()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=p.vq_lr, weight_decay=0.0, betas=(0.9, 0.99))
    K = model.cfg.codebook_size
    usage = torch.full((K,), 1.0 / K)
    sched, step = Schedule(p.vq_steps, p.vq_lr, time_budget_s), 0
    while not sched.done(step):
        x = images[_batch_idx(gen, len(images), p.vq_batch)].to(device)
        if step == 0:
            with torch.no_grad():
                model.init_codebook(model(x)[3].cpu(), gen)
        _set_lr(opt, sched.lr(step))
        recon, vq_loss, ids, zf = model(x)
        rec = F.mse_loss(recon, to_float(x))
        loss = rec + vq_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counts = torch.bincount(ids.flatten().cpu(), minlength=K).float()
        usage.mul_(0.99).add_(0.01 * counts / counts.sum())
        restarted = 0
        if step % 25 == 0 and sched.frac(step) < 0.8:
            restarted = model.restart_dead(usage, zf.detach().cpu(), gen, threshold=0.05 / K)
        if step % 50 == 0:
            _report(progress, "tokenizer", step, p.vq_steps,
                    {"mse": rec.item(), "vq": vq_loss.item(), "restarted": restarted})
        step += 1
    train_s = time.time() - t0
    ck.save_checkpoint(model, out_dir, "tokenizer", {
        "data": data_record(p, data_dir),
        "training": {"steps": step, "planned_steps": p.vq_steps, "time_budget_s": time_budget_s,
                     "final_mse": round(rec.item(), 5), "batch": p.vq_batch, "lr": p.vq_lr, "seconds": round(train_s, 1),
                     "device": device}})
    if p.vq_dec_steps > 0:
        return finetune_decoder(out_dir, preset, device, progress, time_budget_s and time_budget_s * p.vq_dec_share,
                                data_dir=data_dir)
    model, _ = ck.load_checkpoint(out_dir, "tokenizer", device)
    metrics = eval_tokenizer(model, p.n_eval_images, device, data_dir)
    _report(progress, "tokenizer", p.vq_steps, p.vq_steps, metrics)
    return ck.update_card(out_dir, "tokenizer", metrics=metrics)


def finetune_decoder(out_dir, preset: str = "shapes-256", device: str = "cpu",
                     progress: Progress | None = None, time_budget_s: float | None = None,
                     data_dir=None) -> dict:
    """Second tokenizer phase: train the decoder alone (encoder and codebook frozen, so every
    image's codes are unchanged and a cloud trained on them stays valid); re-save and measure."""
    p, t0 = get_preset(preset), time.time()
    model, card = ck.load_checkpoint(out_dir, "tokenizer", device)
    model.train()
    gen = torch.Generator().manual_seed(p.seed + 10)
    images = torch.from_numpy(train_scenes(p, data_dir).images)
    opt = torch.optim.AdamW(model.decoder.parameters(), lr=p.vq_dec_lr, weight_decay=0.0, betas=(0.9, 0.99))
    sched, step = Schedule(p.vq_dec_steps, p.vq_dec_lr, time_budget_s, warmup=20), 0
    while not sched.done(step):
        x = images[_batch_idx(gen, len(images), p.vq_batch)].to(device)
        with torch.no_grad():
            zq = model.quantize(model.encoder(to_float(x)))[0]
        _set_lr(opt, sched.lr(step))
        loss = F.mse_loss(model.decoder(zq), to_float(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            _report(progress, "tokenizer-decoder", step, p.vq_dec_steps, {"mse": loss.item()})
        step += 1
    training = dict(card.get("training", {}))
    rounds = training.get("decoder_finetune", [])
    rounds = rounds if isinstance(rounds, list) else [rounds]
    training["decoder_finetune"] = rounds + [{"steps": step, "planned_steps": p.vq_dec_steps, "lr": p.vq_dec_lr,
                                    "time_budget_s": time_budget_s, "seconds": round(time.time() - t0, 1),
                                    "final_mse": round(loss.item(), 5), "frozen": "encoder, codebook"}]
    ck.save_checkpoint(model, out_dir, "tokenizer", {"data": card.get("data", {}), "training": training})
    model, _ = ck.load_checkpoint(out_dir, "tokenizer", device)
    metrics = eval_tokenizer(model, p.n_eval_images, device, data_dir)
    _report(progress, "tokenizer", p.vq_steps, p.vq_steps, metrics)
    return ck.update_card(out_dir, "tokenizer", metrics=metrics)


@torch.no_grad()
def eval_tokenizer(model: VQModel, n: int, device: str = "cpu", data_dir=None) -> dict:
    """PSNR (dB) and codebook usage on ``n`` held-out EVAL_SEED images (or a folder's held-out rows)."""
    images = torch.from_numpy(heldout_scenes(n, data_dir).images)
    n = len(images)
    codes, recon = [], []
    for i in range(0, n, 128):
        c = model.encode(images[i:i + 128].to(device))
        codes.append(c.cpu())
        recon.append(model.decode_code(c).cpu())
    codes = torch.cat(codes)
    return {"psnr_db": round(psnr_db(torch.cat(recon), images), 3),
            "codebook_usage": round(codebook_usage(codes, model.cfg.codebook_size), 4),
            "n_eval_images": n, **({"eval_seed": EVAL_SEED} if not data_dir else {"eval": "folder held-out rows"})}


# ---------------------------------------------------------------- cloud GPT

def encode_scenes(vq: VQModel, data: SceneSet, tok: CaptionTokenizer, device: str = "cpu", batch: int = 256):
    """Scenes -> (caption ids int64 (n, cap_len), image codes int64 (n, 256))."""
    caps = torch.from_numpy(tok.encode_batch(data.captions))
    images = torch.from_numpy(data.images)
    codes = torch.cat([vq.encode(images[i:i + batch].to(device)).cpu() for i in range(0, len(images), batch)])
    return caps, codes


def cloud_config(p: TrainPreset, vq: VQModel, tok: CaptionTokenizer):
    return GPT_PRESETS[p.gpt](vocab_size=vq.cfg.codebook_size, text_vocab_size=tok.vocab_size,
                              cap_len=tok.max_len, grid=vq.cfg.grid)


def train_cloud(out_dir, preset: str = "shapes-256", device: str = "cpu",
                progress: Progress | None = None, time_budget_s: float | None = None,
                resume: bool = False, precision: str = "auto", steps: int | None = None, data_dir=None,
                batch: int | None = None) -> dict:
    """Train the cloud GPT on tokenizer codes of the training scenes; save ``cloud.*``.

    ``resume``: continue from the saved cloud (new optimiser, warm-up, peak lr ``gpt_resume_lr``);
    the card keeps the earlier rounds. ``steps`` / ``batch`` override the preset's. ``data_dir``: train
    on a user folder (images + captions.csv) with a caption vocabulary built from its captions."""
    p, t0 = get_preset(preset), time.time()
    p = replace(p, gpt_steps=steps or p.gpt_steps, gpt_batch=batch or p.gpt_batch)
    precision = resolve_precision(precision, device)
    vq, _ = ck.load_checkpoint(out_dir, "tokenizer", device)
    scenes = train_scenes(p, data_dir)
    earlier = []
    if resume:
        model, old = ck.load_checkpoint(out_dir, "cloud", device)
        model.train()
        earlier = old["training"].pop("earlier_rounds", []) + [old["training"]]
        tok = ck.caption_tokenizer(old)
    else:
        tok = CaptionTokenizer.from_captions(scenes.captions) if data_dir else CaptionTokenizer()
        model = GPT(cloud_config(p, vq, tok)).to(device)
    caps, codes = encode_scenes(vq, scenes, tok, device)
    gen = torch.Generator().manual_seed(p.seed + 1 + len(earlier))
    lr = p.gpt_resume_lr if resume else p.gpt_lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05, betas=(0.9, 0.95))
    sched, step = Schedule(p.gpt_steps, lr, time_budget_s), 0
    data = {**data_record(p, data_dir), "tokenizer_sha256": _sha(out_dir, "tokenizer"),
            **({"caption_vocab": list(tok.vocab)} if tok.vocab != CaptionTokenizer().vocab else {})}
    # a partial save (killed run) keeps the vocabulary and the earlier rounds, so it loads and resumes
    saver = PartialSaver(out_dir, "cloud", {"data": data, "training": {"earlier_rounds": earlier}})
    while not sched.done(step):
        idx = _batch_idx(gen, len(caps), p.gpt_batch)
        cap = drop_condition(caps[idx], model.cfg.cond_drop, model.cfg.null_id, gen).to(device)
        _set_lr(opt, sched.lr(step))
        with autocast(device, precision):
            loss = lm_loss(model, cap, codes[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            _report(progress, "cloud", step, p.gpt_steps, {"loss": loss.item(), "elapsed_s": time.time() - t0})
        saver(model, step + 1)  # steps completed
        step += 1
    return ck.save_checkpoint(model, out_dir, "cloud", {
        "data": data,
        "training": {"steps": step, "planned_steps": p.gpt_steps, "time_budget_s": time_budget_s,
                     "final_loss": round(loss.item(), 4), "batch": p.gpt_batch, "lr": lr, "device": device,
                     "precision": precision, "seconds": round(time.time() - t0, 1), "cond_drop": model.cfg.cond_drop,
                     "earlier_rounds": earlier,
                     "total_steps": step + sum(r.get("steps", 0) for r in earlier)}})


def _sha(out_dir, kind: str) -> str:
    return ck.read_json(Path(out_dir) / f"{kind}.json", kind)["sha256"]


# ---------------------------------------------------------------- device (Inter-DRO)

def device_step_loss(dev: DeviceModel, cloud: GPT, cap, img, w: InterDROWeights, with_phi: bool,
                     precision: str = "fp32") -> dict:
    """Inter-DRO terms for one teacher-forced batch (+ phi's cloud loss on the injected run).

    ``precision`` applies to the frozen cloud's passes only; the device and InterFuse stay fp32."""
    Lc = cloud.cfg.cap_len
    dev_type = str(next(cloud.parameters()).device)
    seq = sequence(cap, img)  # (B, Lc + N - 1)
    with torch.no_grad(), autocast(dev_type, precision):
        logits = cloud(seq)[:, Lc - 1:]
    log_p_cloud = F.log_softmax(logits.float(), -1)  # (B, N, V)
    out = dev(seq)
    terms = inter_dro_loss(out.positions(Lc - 1), log_p_cloud, w)
    if with_phi:  # phi learns only from the cloud's loss: its inputs are detached
        f = dev.phi(out.h.detach(), out.p_lo.detach(), out.p_hi.detach())  # (B, T, D)
        f = f * (torch.arange(seq.shape[1], device=seq.device) >= Lc)[None, :, None]  # image inputs only
        with autocast(dev_type, precision):
            terms["phi_cloud_ce"] = w.lambda_phi * lm_loss(cloud, cap, img, feats=f)
        terms["total"] = terms["total"] + terms["phi_cloud_ce"]
    return terms


def train_device(out_dir, preset: str = "shapes-256", device: str = "cpu",
                 progress: Progress | None = None, time_budget_s: float | None = None,
                 precision: str = "auto", steps: int | None = None, data_dir=None,
                 batch: int | None = None) -> dict:
    """Train the device layer, Inter-Head and phi against the frozen cloud; save ``device.*``."""
    p, t0 = get_preset(preset), time.time()
    p = replace(p, dev_steps=steps or p.dev_steps, dev_batch=batch or p.dev_batch)
    precision = resolve_precision(precision, device)
    vq, _ = ck.load_checkpoint(out_dir, "tokenizer", device)
    cloud, cloud_card = ck.load_checkpoint(out_dir, "cloud", device)
    cloud.requires_grad_(False)
    caps, codes = encode_scenes(vq, train_scenes(p, data_dir), ck.caption_tokenizer(cloud_card), device)
    gen = torch.Generator().manual_seed(p.seed + 2)
    dev = DeviceModel(DeviceConfig(cloud=cloud.cfg)).to(device)
    dev.init_from_cloud(cloud)
    opt = torch.optim.AdamW(dev.parameters(), lr=p.dev_lr, weight_decay=0.0, betas=(0.9, 0.95))
    sched, step = Schedule(p.dev_steps, p.dev_lr, time_budget_s), 0
    saver = PartialSaver(out_dir, "device", {})
    while not sched.done(step):
        idx = _batch_idx(gen, len(caps), p.dev_batch)
        cap = drop_condition(caps[idx], cloud.cfg.cond_drop, cloud.cfg.null_id, gen).to(device)
        _set_lr(opt, sched.lr(step))
        terms = device_step_loss(dev, cloud, cap, codes[idx].to(device), p.dro, with_phi=step % 2 == 0,
                                 precision=precision)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(dev.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            _report(progress, "device", step, p.dev_steps,
                    {k: v.item() for k, v in terms.items()} | {"elapsed_s": time.time() - t0})
        saver(dev, step + 1)
        step += 1
    return ck.save_checkpoint(dev, out_dir, "device", {
        "data": {**data_record(p, data_dir), "cloud_sha256": _sha(out_dir, "cloud")},
        "training": {"steps": step, "planned_steps": p.dev_steps, "time_budget_s": time_budget_s,
                     "final_loss": {k: round(v.item(), 4) for k, v in terms.items()}, "batch": p.dev_batch, "lr": p.dev_lr, "device": device,
                     "precision_cloud_passes": precision,
                     "seconds": round(time.time() - t0, 1), "loss_weights": p.dro.to_dict(),
                     "phi_every": 2, "cond_drop": cloud.cfg.cond_drop,
                     "teacher": "frozen cloud, teacher-forced on training-scene codes"}})


# ---------------------------------------------------------------- evaluation (card metrics)

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
def teacher_forced_batches(cloud: GPT, dev: DeviceModel, cap, codes, cfg_scale: float, batch: int = 16):
    """Teacher-force cloud and device on given image codes, ``batch`` prompts at a time: yields the
    cloud's CFG-guided next-token p (b, N, V) and the device's raw cond|uncond outputs (2b, N, ...)."""
    Lc, null = cloud.cfg.cap_len, cloud.cfg.null_id
    for i in range(0, cap.shape[0], batch):
        seq = sequence(with_null(cap[i:i + batch], null), codes[i:i + batch].repeat(2, 1))
        yield F.softmax(cfg_mix(cloud(seq)[:, Lc - 1:], cfg_scale), -1), dev(seq).positions(Lc - 1)


def greedy_rejection(p: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The device's greedy proposal x = argmax q (..., 1) and the card's label: would the exact
    speculative check more likely reject it, 1 - min(1, p(x)/q(x)) > 0.5 (...)."""
    x = q.argmax(-1, keepdim=True)
    ratio = (p.gather(-1, x) / q.gather(-1, x)).squeeze(-1)
    return x, 1 - ratio.clamp(max=1.0) > 0.5


def teacher_forced_signals(cloud: GPT, dev: DeviceModel, cap, codes, cfg_scale: float, batch: int = 16) -> dict:
    """Per image position on given sequences: cloud p and device q (both CFG-guided) ->
    greedy agreement, rejection labels and the three uncertainty signals (flat numpy arrays)."""
    cols = {k: [] for k in ("agree", "reject", "U", "entropy", "one_minus_max")}
    for p, out in teacher_forced_batches(cloud, dev, cap, codes, cfg_scale, batch):
        g = guide(out, cfg_scale)
        q = g.p_mid
        x, reject = greedy_rejection(p, q)
        cols["agree"].append((x.squeeze(-1) == p.argmax(-1)).flatten())
        cols["reject"].append(reject.flatten())
        cols["U"].append(g.U.flatten())
        cols["entropy"].append(-(q * g.log_p_mid).sum(-1).flatten())
        cols["one_minus_max"].append((1 - q.max(-1).values).flatten())
    return {k: torch.cat(v).numpy() for k, v in cols.items()}


def _no_quality(images, captions, ref) -> dict:
    return {"caption_consistency": None, "fd": None,
            "note": "not measured: the attribute classifier knows only the procedural scenes' attributes"}


def _quality(images: np.ndarray, captions: list[str], ref: np.ndarray) -> dict:
    from ciarsim.nn import quality

    try:
        clf = quality.load_classifier()
    except CiarsimError as e:
        return {"caption_consistency": None, "fd": None, "note": f"classifier unavailable: {e}"}
    return {"caption_consistency": round(quality.caption_consistency(images, captions, clf), 4),
            "fd": round(quality.frechet_distance(images, ref, clf).fd, 4)}


@torch.no_grad()
def evaluate_models(out_dir, preset: str = "shapes-256", device: str = "cpu",
                    progress: Progress | None = None, data_dir=None) -> dict:
    """Measure every card metric on held-out EVAL_SEED prompts (or a user folder's held-out rows,
    where the attribute-classifier metrics do not apply); write card.json and CARD.md."""
    p, t0 = get_preset(preset), time.time()
    models = ck.load_models(out_dir, device)
    vq, cloud, dev = models.tokenizer, models.cloud, models.device
    data = heldout_scenes(p.n_eval_prompts, data_dir)
    n = len(data.captions)
    cap = torch.from_numpy(models.captions.encode_batch(data.captions)).to(device)
    quality = _quality if not data_dir else _no_quality
    ref = make_dataset(max(n, 1000), EVAL_SEED, start=n).images if not data_dir else None
    gen = torch.Generator(device=device).manual_seed(p.seed + 3)
    cloud_codes = torch.cat([generate(cloud, cap[i:i + 100], p.cfg_scale, p.temperature, p.top_k, gen)
                             for i in range(0, n, 100)])
    _report(progress, "evaluate", 1, 4, {"cloud_samples_s": time.time() - t0})
    dev_codes = torch.cat([device_generate(dev, cap[i:i + 100], p.cfg_scale) for i in range(0, n, 100)])
    _report(progress, "evaluate", 2, 4, {"device_samples_s": time.time() - t0})
    cloud_q = quality(vq.decode_code(cloud_codes).cpu().numpy(), data.captions, ref)
    dev_q = quality(vq.decode_code(dev_codes).cpu().numpy(), data.captions, ref)
    real_q = quality(data.images, data.captions, ref)  # the same prompts' real images: the ceiling
    recon_q = quality(vq.decode_code(vq.encode(torch.from_numpy(data.images).to(device))).cpu().numpy(),
                      data.captions, ref)  # real images through the tokenizer
    sig = teacher_forced_signals(cloud, dev, cap, cloud_codes, p.cfg_scale)
    _report(progress, "evaluate", 3, 4, {"signals_s": time.time() - t0})
    tok = models.card.get("tokenizer") or ck.read_json(Path(out_dir) / "tokenizer.json", "tokenizer").get("metrics", {})
    if "psnr_db" not in tok:
        tok = eval_tokenizer(vq, p.n_eval_images, device, data_dir)
    disagree = ~sig["agree"]
    card = {
        "model_set": Path(out_dir).name, "preset": preset,
        "eval": {**({"seed": EVAL_SEED} if not data_dir else {"prompts": "held-out rows of " + str(data_dir)}),
                 "n_prompts": n, "n_positions": int(sig["agree"].size),
                 "n_reference_images": 0 if ref is None else int(len(ref)), "cfg_scale": p.cfg_scale, "top_k": p.top_k,
                 "temperature": p.temperature, "device_decoding": "greedy on CFG-guided p_mid",
                 "signals_on": "teacher-forced on held-out cloud samples; proposal = device greedy token",
                 "reject_label": "1 - min(1, p(x)/q(x)) > 0.5", "seconds": round(time.time() - t0, 1)},
        "reference": {"real_images": real_q, "tokenizer_reconstructions": recon_q,
                      "note": "same held-out prompts' real images (and their VQ reconstructions) scored like the "
                              "samples: the ceiling for caption consistency and the FD floor at this sample size"},
        "tokenizer": tok,
        "cloud": cloud_q,
        "device": {**dev_q, "greedy_agreement": round(float(sig["agree"].mean()), 4)},
        "interhead": {"reject_rate": round(float(sig["reject"].mean()), 4)},
        "targets": {},
    }
    for name, key in (("interval", "U"), ("entropy", "entropy"), ("max_prob", "one_minus_max")):
        card["interhead"][f"auroc_{name}"] = _num(auroc(sig[key], sig["reject"]))
        card["interhead"][f"auroc_{name}_vs_greedy_disagreement"] = _num(auroc(sig[key], disagree))
    card["targets"] = _targets(card)
    write_card(out_dir, card)
    _report(progress, "evaluate", 4, 4, {"seconds": time.time() - t0})
    return card


def _totals(training: dict) -> tuple[int, float]:
    """Steps and seconds over every round recorded in a model card's ``training``."""
    rounds = [training] + training.get("earlier_rounds", []) + list(training.get("decoder_finetune", []))
    return sum(r.get("steps", 0) for r in rounds), round(sum(r.get("seconds", 0.0) for r in rounds), 1)


def write_card(out_dir, card: dict) -> None:
    """Fill ``checkpoints`` from the per-model cards; write card.json and CARD.md."""
    for kind in ck.KINDS:
        c = ck.read_json(Path(out_dir) / f"{kind}.json", kind)
        steps, seconds = _totals(c.get("training", {}))
        card.setdefault("checkpoints", {})[kind] = {
            "sha256": c["sha256"], "n_params": c["n_params"], "total_steps": steps,
            "total_train_seconds": seconds, "training": c.get("training", {})}
    ck.write_json(Path(out_dir) / "card.json", card)
    (Path(out_dir) / "CARD.md").write_text(card_markdown(card))


def _num(x: float) -> float | None:
    """Rounded float, or None for nan (JSON has no nan)."""
    return None if x != x else round(float(x), 4)


def _targets(card: dict) -> dict:
    """Each target with its measured value and whether it is met (None: not measured)."""
    ih, cc, dv = card["interhead"], card["cloud"]["caption_consistency"], card["device"]["caption_consistency"]
    aucs = [ih["auroc_interval"], ih["auroc_entropy"], ih["auroc_max_prob"]]
    a_int = aucs[0]

    def chk(ok):
        return None if ok is None else bool(ok)
    return {
        "tokenizer.psnr_db >= 28": chk(card["tokenizer"]["psnr_db"] >= 28),
        "tokenizer.codebook_usage >= 0.80": chk(card["tokenizer"]["codebook_usage"] >= 0.80),
        "cloud.caption_consistency >= 0.85": chk(None if cc is None else cc >= 0.85),
        "device alone worse than cloud (consistency)": chk(None if cc is None or dv is None else dv < cc),
        "interhead.auroc_interval >= 0.80": chk(None if a_int is None else a_int >= 0.80),
        "auroc_interval > auroc_entropy and > auroc_max_prob":
            chk(None if None in aucs else a_int > max(aucs[1:])),
    }


def card_markdown(card: dict) -> str:
    e = card["eval"]
    source = ("procedural captioned scenes (`ciarsim.nn.data`, TRAIN_SEED); every number below is measured "
              "on held-out EVAL_SEED data" if "prompts" not in e else
              f"a user folder; every number below is measured on its {e['prompts']}")
    lines = [f"# Decision models `{card['model_set']}`", "",
             f"Small LlamaGen-style models trained on {source} "
             f"({e['n_prompts']} prompts, {e['n_positions']} teacher-forced positions, "
             f"CFG {e['cfg_scale']}, top-k {e['top_k'] or 'off'}, T {e['temperature']}).", "",
             "| metric | value |", "|---|---|"]
    for sec in ("tokenizer", "cloud", "device", "interhead", "reference"):
        for k, v in card[sec].items():
            if isinstance(v, dict):
                lines += [f"| {sec}.{k}.{kk} | {vv} |" for kk, vv in v.items()]
                continue
            if k == "note":
                continue
            if k not in ("n_eval_images", "eval_seed"):
                lines.append(f"| {sec}.{k} | {v} |")
    lines += ["", "## Targets", "", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else ('not measured' if v is None else '**missed**')} |"
              for k, v in card["targets"].items()]
    lines += ["", "## Checkpoints", "", "| model | params | steps (all rounds) | train seconds (all rounds) | sha256 |",
              "|---|---|---|---|---|"]
    for k, c in card["checkpoints"].items():
        lines.append(f"| {k} | {c['n_params']:,} | {c['total_steps']} | {c['total_train_seconds']} | "
                     f"`{c['sha256'][:16]}…` |")
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    lines += ["", "Definitions: greedy agreement = share of positions where the device's greedy token equals "
              "the cloud's greedy token (both CFG-guided), teacher-forced on the cloud's own held-out samples. "
              f"Rejection label: {e['reject_label']} for the device's greedy token x (p cloud, q device p_mid). "
              "AUROC scores: U (interval), entropy of q, 1 - max q. Rebuild: `ciarsim train all`.", ""]
    return "\n".join(lines)


def train_all(out_dir, preset: str = "shapes-256", device: str = "cpu", progress: Progress | None = None,
              cloud_budget_s: float | None = None, device_budget_s: float | None = None,
              precision: str = "auto", data_dir=None) -> dict:
    """Tokenizer, cloud, device, then the card metrics; returns the aggregate card.

    The optional budgets cap the cloud / device training wall-clock time (seconds); ``data_dir``
    trains on a user folder (images + captions.csv) instead of the procedural scenes."""
    train_tokenizer(out_dir, preset, device, progress, data_dir=data_dir)
    train_cloud(out_dir, preset, device, progress, cloud_budget_s, precision=precision, data_dir=data_dir)
    train_device(out_dir, preset, device, progress, device_budget_s, precision=precision, data_dir=data_dir)
    return evaluate_models(out_dir, preset, device, progress, data_dir=data_dir)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ciarsim.nn.train")
    ap.add_argument("what", choices=["tokenizer", "tokenizer-decoder", "cloud", "device", "all", "evaluate"])
    ap.add_argument("--out", default=str(ck.DEFAULT_DIR))
    ap.add_argument("--preset", default="shapes-256")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--budget-min", type=float, default=None,
                    help="wall-clock cap in minutes for cloud/device training (all: split 70/30)")
    ap.add_argument("--resume", action="store_true", help="cloud: continue from the saved checkpoint")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids contention)")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="GPT passes: bf16 autocast (auto: where the hardware has bf16) or fp32")
    ap.add_argument("--steps", type=int, default=None, help="cloud/device: override the preset's step count")
    ap.add_argument("--batch", type=int, default=None, help="cloud/device: override the preset's batch size")
    ap.add_argument("--data", default=None, help="train on a folder of images + captions.csv (file,caption)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    def progress(stage, step, total, m):
        txt = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items())
        print(f"[{time.strftime('%H:%M:%S')}] {stage} {step}/{total} {txt}", flush=True)

    fn = {"tokenizer": train_tokenizer, "tokenizer-decoder": finetune_decoder, "cloud": train_cloud, "device": train_device, "all": train_all,
          "evaluate": evaluate_models}[a.what]
    kw = {}
    if a.what in ("tokenizer", "tokenizer-decoder", "cloud", "device") and a.budget_min:
        kw["time_budget_s"] = 60 * a.budget_min
    if a.what == "all" and a.budget_min:
        kw = {"cloud_budget_s": 60 * a.budget_min * 0.7, "device_budget_s": 60 * a.budget_min * 0.3}
    if a.resume:
        kw["resume"] = True
    if a.what in ("cloud", "device", "all"):
        kw["precision"] = a.precision
    if a.what in ("cloud", "device") and a.steps:
        kw["steps"] = a.steps
    if a.what in ("cloud", "device") and a.batch:
        kw["batch"] = a.batch
    if a.data:
        kw["data_dir"] = a.data
    fn(a.out, preset=a.preset, device=a.device, progress=progress, **kw)


if __name__ == "__main__":
    main()
