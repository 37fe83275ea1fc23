"""The card: every metric of a trained model set measured on the test prompts (choices on the
validation prompts), written as card.json and CARD.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ciarsim.errors import CiarsimError
from ciarsim.nn import checkpoints as ck
from ciarsim.nn import splits
from ciarsim.nn.data import EVAL_SEED, make_dataset
from ciarsim.nn.device import CFG_VARIANTS, DEFAULT_VARIANTS, SIGNALS
from ciarsim.nn.gpt import generate
from ciarsim.nn.train.card import targets, write_card
from ciarsim.nn.train.loop import Progress, heldout_scenes, report
from ciarsim.nn.train.presets import get_preset
from ciarsim.nn.train.signals import (
    auroc_flat, bootstrap_ci, choose_variants, device_generate, json_float, mean_ci, teacher_forced_signals,
)  # fmt: skip
from ciarsim.nn.train.tokenizer import eval_tokenizer


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
    """Measure every card metric; write card.json and CARD.md.

    Choices on the ``validation`` prompt split (``ciarsim.nn.splits``): each signal's CFG variant
    (``choose_variants``). Every reported number on the ``test`` split (``n_eval_prompts`` prompts
    from 0; a user folder's test rows, where the attribute-classifier metrics do not apply), with 95%
    intervals from a bootstrap over prompts."""
    p, t0 = get_preset(preset), time.time()
    models = ck.load_models(out_dir, device)
    vq, cloud, dev = models.tokenizer, models.cloud, models.device
    data = heldout_scenes(p.n_eval_prompts, data_dir)
    val = splits.scenes("validation", p.n_val_prompts) if not data_dir else splits.folder_rows("validation", data_dir)
    n = len(data.captions)
    cap = torch.from_numpy(models.captions.encode_batch(data.captions)).to(device)
    quality = _quality if not data_dir else _no_quality
    ref = make_dataset(max(n, 1000), EVAL_SEED, start=n).images if not data_dir else None
    gen = torch.Generator(device=device).manual_seed(p.seed + 3)
    cloud_codes = torch.cat([generate(cloud, cap[i:i + 100], p.cfg_scale, p.temperature, p.top_k, gen)
                             for i in range(0, n, 100)])
    report(progress, "evaluate", 1, 5, {"cloud_samples_s": time.time() - t0})
    dev_codes = torch.cat([device_generate(dev, cap[i:i + 100], p.cfg_scale) for i in range(0, n, 100)])
    report(progress, "evaluate", 2, 5, {"device_samples_s": time.time() - t0})
    cloud_q = quality(vq.decode_code(cloud_codes).cpu().numpy(), data.captions, ref)
    dev_q = quality(vq.decode_code(dev_codes).cpu().numpy(), data.captions, ref)
    real_q = quality(data.images, data.captions, ref)  # the same prompts' real images: the ceiling
    real_codes = vq.encode(torch.from_numpy(data.images).to(device))
    recon_q = quality(vq.decode_code(real_codes).cpu().numpy(), data.captions, ref)  # real images through the tokenizer
    sig = teacher_forced_signals(cloud, dev, cap, cloud_codes, p.cfg_scale)
    real = teacher_forced_signals(cloud, dev, cap, real_codes, p.cfg_scale)  # the paper-like protocol
    report(progress, "evaluate", 3, 5, {"signals_s": time.time() - t0})
    chosen = {}
    if len(val.captions):  # the CFG variant of each signal, chosen on validation prompts
        vcap = torch.from_numpy(models.captions.encode_batch(val.captions)).to(device)
        vgen = torch.Generator(device=device).manual_seed(p.seed + 4)
        vcodes = torch.cat([generate(cloud, vcap[i:i + 100], p.cfg_scale, p.temperature, p.top_k, vgen)
                            for i in range(0, len(vcap), 100)])
        chosen = choose_variants(teacher_forced_signals(cloud, dev, vcap, vcodes, p.cfg_scale))
    report(progress, "evaluate", 4, 5, {"validation_s": time.time() - t0})
    tok = models.card.get("tokenizer") or ck.read_json(Path(out_dir) / "tokenizer.json", "tokenizer").get("metrics", {})
    if "psnr_db" not in tok:
        tok = eval_tokenizer(vq, p.n_eval_images, device, data_dir)
    disagree = ~sig["agree"]
    agree = {"greedy_agreement": mean_ci(sig["agree"], p.seed),
             "greedy_agreement_caption_branch": mean_ci(sig["agree_caption"], p.seed),
             "greedy_agreement_real_codes": mean_ci(real["agree"], p.seed),
             "greedy_agreement_paper_like": mean_ci(real["agree_caption"], p.seed)}
    card = {
        "model_set": Path(out_dir).name, "preset": preset,
        "eval": {**({"split": "test", "seed": EVAL_SEED} if not data_dir else
                    {"split": "test", "prompts": "held-out rows of " + str(data_dir) + " (their test half)"}),
                 "n_prompts": n, "n_positions": int(sig["agree"].size),
                 "validation": {"split": "validation", "n_prompts": len(val.captions),
                                **({"seed": splits.VALIDATION_SEED} if not data_dir else {}),
                                "chooses": "each signal's CFG variant (higher AUROC against the rejection label)"},
                 "n_reference_images": 0 if ref is None else int(len(ref)), "cfg_scale": p.cfg_scale, "top_k": p.top_k,
                 "temperature": p.temperature, "device_decoding": "greedy on CFG-guided p_mid",
                 "signals_on": "teacher-forced on held-out cloud samples; proposal = device greedy token",
                 "paper_like_protocol": "teacher-forced on the test prompts' real images' codes, caption branch only "
                                        "(device and cloud greedy without guidance)",
                 "ci": "95% percentile bootstrap over prompts, 200 resamples",
                 "reject_label": "1 - min(1, p(x)/q(x)) > 0.5", "seconds": round(time.time() - t0, 1)},
        "reference": {"real_images": real_q, "tokenizer_reconstructions": recon_q,
                      "note": "same held-out prompts' real images (and their VQ reconstructions) scored like the "
                              "samples: the ceiling for caption consistency and the FD floor at this sample size"},
        "tokenizer": tok,
        "cloud": cloud_q,
        "device": {**dev_q, "layers": dev.cfg.n_layer, "greedy_agreement": agree["greedy_agreement"]["mean"],
                   "greedy_agreement_ci95": agree["greedy_agreement"]["ci95"],
                   **{k: v for k, v in agree.items() if k != "greedy_agreement"}},
        "interhead": {"reject_rate": round(float(sig["reject"].mean()), 4),
                      "cfg_variant": {k: v["variant"] for k, v in chosen.items()} or dict(DEFAULT_VARIANTS),
                      "validation_auroc_reject": {f"{k}/{var}": v[f"auroc_reject_{var}"] for k, v in chosen.items()
                                                  for var in CFG_VARIANTS}},
        "targets": {},
    }
    ih = card["interhead"]
    for name, key in (("interval", "interval"), ("entropy", "entropy"), ("max_prob", "max_prob")):
        score = sig[f"{key}/{ih['cfg_variant'][key]}"]
        ih[f"auroc_{name}"] = json_float(auroc_flat(score, sig["reject"]))
        ih[f"auroc_{name}_ci95"] = bootstrap_ci(auroc_flat, [score, sig["reject"]], seed=p.seed)
        ih[f"auroc_{name}_vs_greedy_disagreement"] = json_float(auroc_flat(score, disagree))
        ih[f"auroc_{name}_vs_greedy_disagreement_ci95"] = bootstrap_ci(auroc_flat, [score, disagree], seed=p.seed)
    ih["all_variants"] = {f"{k}/{v}": {"reject": json_float(auroc_flat(sig[f"{k}/{v}"], sig["reject"])),
                                      "greedy_disagreement": json_float(auroc_flat(sig[f"{k}/{v}"], disagree))}
                          for k in SIGNALS for v in CFG_VARIANTS}
    card["targets"] = targets(card)
    write_card(out_dir, card)
    report(progress, "evaluate", 5, 5, {"seconds": time.time() - t0})
    return card
