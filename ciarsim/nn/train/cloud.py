"""Training of the cloud GPT on the tokenizer's codes of the training scenes (resumable, with
partial checkpoints during long runs).
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from ciarsim.nn import checkpoints as ck
from ciarsim.nn.data import CaptionTokenizer, SceneSet
from ciarsim.nn.gpt import GPT, GPT_PRESETS, drop_condition, lm_loss
from ciarsim.nn.train.loop import (
    PartialSaver, Progress, Schedule, autocast, batch_idx, checkpoint_sha, data_record, report, resolve_precision,
    set_lr, train_scenes,
)  # fmt: skip
from ciarsim.nn.train.presets import TrainPreset, get_preset
from ciarsim.nn.vq import VQModel


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
    data = {**data_record(p, data_dir), "tokenizer_sha256": checkpoint_sha(out_dir, "tokenizer"),
            **({"caption_vocab": list(tok.vocab)} if tok.vocab != CaptionTokenizer().vocab else {})}
    # a partial save (killed run) keeps the vocabulary and the earlier rounds, so it loads and resumes
    saver = PartialSaver(out_dir, "cloud", {"data": data, "training": {"earlier_rounds": earlier}})
    while not sched.done(step):
        idx = batch_idx(gen, len(caps), p.gpt_batch)
        cap = drop_condition(caps[idx], model.cfg.cond_drop, model.cfg.null_id, gen).to(device)
        set_lr(opt, sched.lr(step))
        with autocast(device, precision):
            loss = lm_loss(model, cap, codes[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0:
            report(progress, "cloud", step, p.gpt_steps, {"loss": loss.item(), "elapsed_s": time.time() - t0})
        saver(model, step + 1)  # steps completed
        step += 1
    return ck.save_checkpoint(model, out_dir, "cloud", {
        "data": data,
        "training": {"steps": step, "planned_steps": p.gpt_steps, "time_budget_s": time_budget_s,
                     "final_loss": round(loss.item(), 4), "batch": p.gpt_batch, "lr": lr, "device": device,
                     "precision": precision, "seconds": round(time.time() - t0, 1), "cond_drop": model.cfg.cond_drop,
                     "earlier_rounds": earlier,
                     "total_steps": step + sum(r.get("steps", 0) for r in earlier)}})
