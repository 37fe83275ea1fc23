"""Training of the VQ tokenizer: the main phase (encoder, codebook, decoder), the decoder-only
fine-tuning phase (codes unchanged), and its card metrics (PSNR, codebook usage) on held-out images.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ciarsim.nn import checkpoints as ck
from ciarsim.nn.data import EVAL_SEED
from ciarsim.nn.train.loop import Progress, Schedule, batch_idx, data_record, heldout_scenes, report, set_lr, train_scenes
from ciarsim.nn.train.presets import get_preset
from ciarsim.nn.vq import VQ_PRESETS, VQModel, codebook_usage, psnr_db, to_float


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
        x = images[batch_idx(gen, len(images), p.vq_batch)].to(device)
        if step == 0:
            with torch.no_grad():
                model.init_codebook(model(x)[3].cpu(), gen)
        set_lr(opt, sched.lr(step))
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
            report(progress, "tokenizer", step, p.vq_steps,
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
    report(progress, "tokenizer", p.vq_steps, p.vq_steps, metrics)
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
        x = images[batch_idx(gen, len(images), p.vq_batch)].to(device)
        with torch.no_grad():
            zq = model.quantize(model.encoder(to_float(x)))[0]
        set_lr(opt, sched.lr(step))
        loss = F.mse_loss(model.decoder(zq), to_float(x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            report(progress, "tokenizer-decoder", step, p.vq_dec_steps, {"mse": loss.item()})
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
    report(progress, "tokenizer", p.vq_steps, p.vq_steps, metrics)
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
