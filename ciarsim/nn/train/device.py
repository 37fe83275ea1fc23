"""Training of the device model (trunk, Inter-Head, phi) against the frozen cloud: the Inter-DRO
terms, the guidance-consistent KL distillation and phi's cloud loss, one teacher-forced batch at a time.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from ciarsim.errors import CiarsimError
from ciarsim.nn import checkpoints as ck
from ciarsim.nn.device import DeviceConfig, DeviceModel, InterDROWeights, distill_loss, inter_dro_loss
from ciarsim.nn.gpt import GPT, drop_condition, generate, lm_loss, sequence, with_null
from ciarsim.nn.train.cloud import encode_scenes
from ciarsim.nn.train.loop import (
    PartialSaver, Progress, Schedule, autocast, batch_idx, checkpoint_sha, data_record, report, resolve_precision,
    set_lr, train_scenes,
)  # fmt: skip
from ciarsim.nn.train.presets import get_preset


def device_step_loss(dev: DeviceModel, cloud: GPT, cap, img, w: InterDROWeights, with_phi: bool,
                     precision: str = "fp32", cfg_scale: float = 3.0) -> dict:
    """Inter-DRO terms for one teacher-forced batch (+ phi's cloud loss on the injected run).

    With ``w.lambda_kl`` > 0 every image is run with its caption and with the null caption (2B rows,
    caption rows first): Inter-DRO on both branches plus the three distillation KL terms
    (``distill_loss``: guided at ``cfg_scale``, caption branch, null branch). Otherwise ``cap`` is
    used as given (the caller drops captions for the null branch). ``precision`` applies to the
    frozen cloud's passes only; the device and InterFuse stay fp32."""
    Lc = cloud.cfg.cap_len
    dev_type = str(next(cloud.parameters()).device)
    if w.lambda_kl > 0:
        cap, img = with_null(cap, cloud.cfg.null_id), img.repeat(2, 1)
    seq = sequence(cap, img)  # (B or 2B, Lc + N - 1)
    with torch.no_grad(), autocast(dev_type, precision):
        logits = cloud(seq)[:, Lc - 1:]
    logits = logits.float()
    log_p_cloud = F.log_softmax(logits, -1)  # (B, N, V)
    out = dev(seq)
    pos = out.positions(Lc - 1)
    terms = inter_dro_loss(pos, log_p_cloud, w)
    if w.lambda_kl > 0:
        terms.update(distill_loss(pos.c, logits, cfg_scale, w))
        terms["total"] = terms["total"] + terms["kl_guided"] + terms["kl_caption"] + terms["kl_null"]
    if with_phi:  # phi learns only from the cloud's loss: its inputs are detached
        f = dev.phi(out.h.detach(), out.p_lo.detach(), out.p_hi.detach())  # (B, T, D)
        f = f * (torch.arange(seq.shape[1], device=seq.device) >= Lc)[None, :, None]  # image inputs only
        with autocast(dev_type, precision):
            terms["phi_cloud_ce"] = w.lambda_phi * lm_loss(cloud, cap, img, feats=f)
        terms["total"] = terms["total"] + terms["phi_cloud_ce"]
    return terms


def cloud_samples(cloud: GPT, caps: torch.Tensor, p, seed: int, batch: int = 100) -> torch.Tensor:
    """The cloud's own samples (the preset's CFG scale, temperature and top-k) for caption ids
    ``caps`` (n, cap_len): image codes (n, N), drawn from one generator seeded ``seed``."""
    dev = next(cloud.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        return torch.cat([generate(cloud, caps[i:i + batch].to(dev), p.cfg_scale, p.temperature, p.top_k, gen).cpu()
                          for i in range(0, len(caps), batch)])


def train_device(out_dir, preset: str = "shapes-256", device: str = "cpu",
                 progress: Progress | None = None, time_budget_s: float | None = None,
                 precision: str = "auto", steps: int | None = None, data_dir=None,
                 batch: int | None = None, layers: int | None = None, kl: float | None = None,
                 resume: bool = False, phi_every: int | None = None,
                 on_cloud_samples: int | None = None, samples_from: int = 0) -> dict:
    """Train the device trunk, Inter-Head and phi against the frozen cloud; save ``device.*``.

    ``layers``: trunk depth (the cloud's first ``layers`` blocks; default the preset's
    ``dev_layers``, 1). ``kl``: the distillation weight ``lambda_kl`` (default the preset's).
    ``resume``: continue from the saved device (new optimiser and warm-up; the card keeps the
    earlier rounds; its depth wins over ``layers``; peak lr ``dev_resume_lr``). ``phi_every``: train
    phi every this many steps (default the preset's). ``on_cloud_samples`` N: teacher-force on the
    cloud's own samples of training captions ``samples_from`` .. +N (seed ``preset seed + 11 +
    samples_from``) instead of the training scenes' codes: the contexts the device meets when it
    decodes with the cloud, and those the card measures agreement on."""
    p, t0 = get_preset(preset), time.time()
    p = replace(p, dev_steps=steps or p.dev_steps, dev_batch=batch or p.dev_batch,
                dev_layers=layers or p.dev_layers, dev_phi_every=phi_every or p.dev_phi_every, dro=p.dro if kl is None else replace(p.dro, lambda_kl=kl))
    if p.dev_layers < 1:
        raise CiarsimError(f"train device: layers must be >= 1, got {p.dev_layers}")
    precision = resolve_precision(precision, device)
    vq, _ = ck.load_checkpoint(out_dir, "tokenizer", device)
    cloud, cloud_card = ck.load_checkpoint(out_dir, "cloud", device)
    cloud.requires_grad_(False)
    if p.dev_layers > cloud.cfg.n_layer:
        raise CiarsimError(f"train device: layers={p.dev_layers} exceeds the cloud's {cloud.cfg.n_layer} blocks")
    scenes, tok = train_scenes(p, data_dir), ck.caption_tokenizer(cloud_card)
    if on_cloud_samples:
        captions = list(scenes.captions[samples_from:samples_from + on_cloud_samples])
        if len(captions) < on_cloud_samples:
            raise CiarsimError(f"train device: --on-cloud-samples {on_cloud_samples} from caption {samples_from} "
                               f"needs {samples_from + on_cloud_samples} training captions; there are {len(scenes.captions)}")
        caps = torch.from_numpy(tok.encode_batch(captions))
        codes = cloud_samples(cloud, caps, p, p.seed + 11 + samples_from)
        teacher = f"frozen cloud, teacher-forced on its own samples of training captions {samples_from}..{samples_from + len(captions) - 1}"
    else:
        caps, codes = encode_scenes(vq, scenes, tok, device)
        teacher = "frozen cloud, teacher-forced on training-scene codes"
    earlier = []
    if resume:
        dev, old = ck.load_checkpoint(out_dir, "device", device)
        dev.train()
        earlier = old.get("training", {}).pop("earlier_rounds", []) + [old.get("training", {})]
        p = replace(p, dev_layers=dev.cfg.n_layer)
    else:
        dev = DeviceModel(DeviceConfig(cloud=cloud.cfg, n_layer=p.dev_layers)).to(device)
        dev.init_from_cloud(cloud)
    gen = torch.Generator().manual_seed(p.seed + 2 + len(earlier))
    lr = p.dev_resume_lr if resume else p.dev_lr
    opt = torch.optim.AdamW(dev.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
    sched, step = Schedule(p.dev_steps, lr, time_budget_s), 0
    data = {**data_record(p, data_dir), "cloud_sha256": checkpoint_sha(out_dir, "cloud")}
    saver = PartialSaver(out_dir, "device", {"data": data, "training": {"earlier_rounds": earlier}})
    while not sched.done(step):
        idx = batch_idx(gen, len(caps), p.dev_batch)
        cap = caps[idx] if p.dro.lambda_kl > 0 else drop_condition(caps[idx], cloud.cfg.cond_drop, cloud.cfg.null_id, gen)
        set_lr(opt, sched.lr(step))
        terms = device_step_loss(dev, cloud, cap.to(device), codes[idx].to(device), p.dro, with_phi=step % p.dev_phi_every == 0,
                                 precision=precision, cfg_scale=p.cfg_scale)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(dev.parameters(), 1.0)
        opt.step()
        if step % 25 == 0:
            report(progress, "device", step, p.dev_steps,
                    {k: v.item() for k, v in terms.items()} | {"elapsed_s": time.time() - t0})
        saver(dev, step + 1)
        step += 1
    return ck.save_checkpoint(dev, out_dir, "device", {
        "data": data,
        "training": {"steps": step, "planned_steps": p.dev_steps, "time_budget_s": time_budget_s,
                     "final_loss": {k: round(v.item(), 4) for k, v in terms.items()}, "batch": p.dev_batch, "lr": lr, "device": device,
                     "precision_cloud_passes": precision, "layers": p.dev_layers, "resumed": resume,
                     "seconds": round(time.time() - t0, 1), "loss_weights": p.dro.to_dict(),
                     "phi_every": p.dev_phi_every, "cond_drop": cloud.cfg.cond_drop,
                     "both_captions": p.dro.lambda_kl > 0, "cfg_scale": p.cfg_scale,
                     "teacher": teacher, "earlier_rounds": earlier,
                     "total_steps": step + sum(r.get("steps", 0) for r in earlier)}})
