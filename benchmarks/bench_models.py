"""Decision-model speed on this machine: device step, cloud step (KV cache, 64 images), training.

    python benchmarks/bench_models.py [--models models/shapes-256] [--threads 1] [--append]

Uses the trained default models when present (random weights otherwise; latency does not depend
on weight values). With --append, writes a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ciarsim.nn.checkpoints import DEFAULT_DIR, load_models
from ciarsim.nn.data import CaptionTokenizer
from ciarsim.nn.device import DeviceConfig, DeviceModel, device_step, new_device_cache
from ciarsim.nn.gpt import GPT, GPT_PRESETS, decode_step, lm_loss, new_cache
from ciarsim.nn.profile import device_name
from ciarsim.nn.train import autocast, resolve_precision
from ciarsim.nn.vq import VQ_PRESETS, VQModel, to_float


def _median_ms(fn, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _models(path: Path):
    try:
        m = load_models(path)
        return m.tokenizer, m.cloud, m.device, "trained"
    except Exception:  # noqa: BLE001 - benchmark falls back to random weights
        tok = CaptionTokenizer()
        cfg = GPT_PRESETS["shapes-256"](text_vocab_size=tok.vocab_size, cap_len=tok.max_len)
        return VQModel(VQ_PRESETS["shapes-256"]()), GPT(cfg), DeviceModel(DeviceConfig(cloud=cfg)), "random"


@torch.no_grad()
def bench_steps(vq, cloud, dev, batch=64):
    ctx = cloud.cfg.cap_len + cloud.cfg.n_image // 2  # mid-image
    rows = {}
    for name, model, cache, step in (("cloud", cloud, new_cache(cloud, batch), decode_step),
                                     ("device", dev, new_device_cache(dev, batch), device_step)):
        for k in (1, 4):
            toks = torch.zeros(batch, k, dtype=torch.long)

            def run():
                cache.pos = ctx
                step(model, toks, cache)
            rows[f"{name} step, batch {batch}, context {ctx}, {k} new token(s)"] = _median_ms(run)
    codes = torch.zeros(batch, cloud.cfg.n_image, dtype=torch.long)
    rows[f"VQ decode, batch {batch}"] = _median_ms(lambda: vq.decode_code(codes), 3)
    return rows


def bench_training(vq, cloud):
    gen = torch.Generator().manual_seed(0)
    model = GPT(cloud.cfg)
    opt = torch.optim.AdamW(model.parameters())
    tokens = cloud.cfg.seq_len - 1

    def gpt_step(precision, batch):
        cap = torch.randint(0, cloud.cfg.text_vocab_size, (batch, cloud.cfg.cap_len), generator=gen)
        img = torch.randint(0, cloud.cfg.vocab_size, (batch, cloud.cfg.n_image), generator=gen)
        with autocast("cpu", precision):
            loss = lm_loss(model, cap, img)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rows = {}
    precisions = ["fp32"] + (["bf16"] if resolve_precision("auto", "cpu") == "bf16" else [])  # bf16: native only
    for precision in precisions:
        for batch in (8, 16):
            ms = _median_ms(lambda: gpt_step(precision, batch), 3)
            rows[f"cloud GPT training step, {precision}, batch {batch} x {tokens} tokens, ms"] = ms
            rows[f"cloud GPT training, {precision}, batch {batch}, tokens/s"] = batch * tokens / ms * 1e3
    vqm = VQModel(vq.cfg)
    vopt = torch.optim.AdamW(vqm.parameters())
    x = torch.randint(0, 256, (64, 64, 64, 3), dtype=torch.uint8, generator=gen)

    def vq_step():
        recon, l, _, _ = vqm(x)
        loss = ((recon - to_float(x)) ** 2).mean() + l
        vopt.zero_grad()
        loss.backward()
        vopt.step()
    vms = _median_ms(vq_step, 3)
    return rows | {"VQ training (batch 64, 64x64), steps/s": 1e3 / vms}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=str(DEFAULT_DIR))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--append", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    vq, cloud, dev, kind = _models(Path(a.models))
    steps, train = bench_steps(vq, cloud, dev), bench_training(vq, cloud)
    lines = ["", "## Decision models (ciarsim.nn): step latency and training throughput", "",
             f"- machine: {device_name('cpu')}, {torch.get_num_threads()} torch thread(s), torch "
             f"{torch.__version__}, Python {platform.python_version()}; load average before the run "
             f"{os.getloadavg()[0]:.2f}",
             f"- models: {kind} weights from `{a.models}`; cloud {cloud.n_params() / 1e6:.2f}M params, "
             f"device {sum(p.numel() for p in dev.parameters()) / 1e6:.2f}M params",
             f"- command: `python benchmarks/bench_models.py --threads {a.threads}{' --append' if a.append else ''}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| measurement | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} ms |" for k, v in steps.items()]
    lines += [f"| {k} | {v:.1f} |" for k, v in train.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.append:
        path = Path(__file__).resolve().parent / "RESULTS.md"
        with open(path, "a") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
