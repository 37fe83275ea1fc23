"""Measured step latency of a GPT config on this machine, in the gpu_profiles CSV format.

A step = ``decode_step`` of ``new_tokens`` tokens for ``batch`` sequences whose KV cache already
holds ``context`` tokens (eager PyTorch, random weights: latency does not depend on the values).
Columns: gpu, model, params_m, batch, context, new_tokens, mode, ms_median, plus torch, device,
threads, repeats. On CPU the ``gpu`` column names the CPU.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace

import torch

from ciarsim.errors import CiarsimError
from ciarsim.nn.gpt import GPT, GPT_PRESETS, GPTConfig, KVCache, decode_step


def device_name(device: str) -> str:
    """Human-readable name of the device the profile ran on."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {name}"


def _resolve(config) -> tuple[str, GPTConfig]:
    if isinstance(config, GPTConfig):
        return "gpt", config
    if isinstance(config, str) and config in GPT_PRESETS:  # caption prefix as in training
        from ciarsim.nn.data import CaptionTokenizer

        tok = CaptionTokenizer()
        return config, GPT_PRESETS[config](text_vocab_size=tok.vocab_size, cap_len=tok.max_len)
    raise CiarsimError(f"profile_model: config must be a GPTConfig or one of {sorted(GPT_PRESETS)}, got {config!r}")


def _time_ms(fn, repeats: int, sync) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def profile_model(config, batches, contexts, new_tokens, device: str = "cpu", repeats: int = 5,
                  model_name: str | None = None):
    """Median latency (ms) of one decode step per (batch, context, new_tokens) -> pandas.DataFrame."""
    import pandas as pd

    name, cfg = _resolve(config)
    need = max(contexts) + max(new_tokens)
    if need > cfg.seq_len:  # room in the KV cache: extend the image grid if needed (timing only)
        grid = int((need - cfg.cap_len) ** 0.5) + 1
        cfg = replace(cfg, grid=grid)
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT(cfg).to(device).eval()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    for b in batches:
        cache = KVCache(cfg, b, device=device)
        for ctx in contexts:
            for k in new_tokens:
                toks = torch.randint(0, cfg.vocab_size, (b, k), generator=gen).to(device)

                def step():
                    cache.pos = ctx
                    decode_step(model, toks, cache)
                step()  # warm-up
                rows.append({"gpu": device_name(device), "model": model_name or name,
                             "params_m": round(model.n_params() / 1e6, 2), "batch": b, "context": ctx,
                             "new_tokens": k, "mode": "eager", "ms_median": round(_time_ms(step, repeats, sync), 4),
                             "torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
                             "repeats": repeats})
    return pd.DataFrame(rows)


def profile_to_csv(out_csv, config, batches, contexts, new_tokens, device: str = "cpu", repeats: int = 5):
    """``ciarsim profile``: ``profile_model`` written atomically to ``out_csv``; returns the table."""
    from ciarsim.io import write_table  # noqa: PLC0415

    df = profile_model(config, batches, contexts, new_tokens, device=device, repeats=repeats)
    write_table(df, out_csv)
    return df
