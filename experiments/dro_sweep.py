"""Sweep the Inter-DRO loss weights: short device trainings against one frozen cloud.

    python experiments/dro_sweep.py [--models models/shapes-256] [--steps 120] [--prompts 32]
                                    [--jobs 2] [--out reports/dro-sweep]

CIAR (arXiv 2603.25463) does not publish the Inter-DRO weights. For each setting in
SETTINGS this trains a fresh device model (one layer + Inter-Head + phi) for ``--steps`` steps
against the model set's frozen cloud, then scores the uncertainty signals on cloud samples of
the validation prompt split (``ciarsim.nn.splits``: a selection never sees the card's test
prompts) as the model card does (teacher-forced, CFG-guided, rejection label
1 - min(1, p(x)/q(x)) > 0.5 for the device's greedy token x). Short runs rank settings; they do
not reproduce the card's numbers (fewer steps, fewer prompts). Writes ``sweep.csv`` and
``sweep.md`` under ``--out``, including the cloud checkpoint's SHA-256 the sweep ran against.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

# name -> InterDROWeights overrides (unnamed weights keep their defaults of 1.0)
SETTINGS = {
    "all 1.0": {},
    "l1 x2, dro 0.1": {"lambda_v": 2.0, "lambda_dro": 0.1},
    "l1 x10, ce 0.1, dro 0.1": {"lambda_v": 10.0, "lambda_p": 0.1, "lambda_dro": 0.1},
    "l1 x10, ce 0.1, dro 0 (default)": {"lambda_v": 10.0, "lambda_p": 0.1, "lambda_dro": 0.0},
    "l1 x10, ce 0, dro 0": {"lambda_v": 10.0, "lambda_p": 0.0, "lambda_dro": 0.0},
    "l1 x20, ce 0.05, dro 0": {"lambda_v": 20.0, "lambda_p": 0.05, "lambda_dro": 0.0},
    "l1 x10, ce 0.1, align 3, dro 0": {"lambda_v": 10.0, "lambda_p": 0.1, "lambda_b": 3.0, "lambda_dro": 0.0},
}


def run_setting(models: str, name: str, weights: dict, steps: int, prompts: int) -> dict:
    import numpy as np
    import torch

    from ciarsim.nn import checkpoints as ck
    from ciarsim.nn import train as tr
    from ciarsim.nn import splits
    from ciarsim.nn.data import CaptionTokenizer
    from ciarsim.nn.device import InterDROWeights
    from ciarsim.nn.gpt import generate

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="dro-sweep-") as tmp:
        for kind in ("tokenizer", "cloud"):
            for ext in ("json", "safetensors"):
                shutil.copy(Path(models) / f"{kind}.{ext}", Path(tmp) / f"{kind}.{ext}")
        tr.TRAIN_PRESETS["_sweep"] = replace(tr.get_preset("shapes-256"), dro=InterDROWeights(**weights),
                                             dev_steps=steps)
        t0 = time.time()
        tr.train_device(tmp, "_sweep", "cpu", None, None)
        train_s = time.time() - t0
        cloud, _ = ck.load_checkpoint(tmp, "cloud", "cpu")
        dev, _ = ck.load_checkpoint(tmp, "device", "cpu")
        data = splits.scenes(splits.selection_split("validation").name, prompts)
        cap = torch.from_numpy(CaptionTokenizer().encode_batch(data.captions))
        p = tr.get_preset("shapes-256")
        codes = generate(cloud, cap, p.cfg_scale, p.temperature, p.top_k, torch.Generator().manual_seed(p.seed + 3))
        with torch.no_grad():
            sig = tr.teacher_forced_signals(cloud, dev, cap, codes, p.cfg_scale)
    row = {"setting": name, **{f"w.{k}": v for k, v in InterDROWeights(**weights).to_dict().items()},
           "steps": steps, "prompts": prompts, "positions": int(sig["reject"].size),
           "prompt_split": "validation", "reject_rate": float(np.mean(sig["reject"])),
           "greedy_agreement": float(np.mean(sig["agree"]))}
    variants = {k: v["variant"] for k, v in tr.choose_variants(sig).items()}
    for label in ("interval", "entropy", "max_prob"):
        row[f"auroc_{label}"] = tr.auroc(sig[f"{label}/{variants[label]}"].ravel(), sig["reject"].ravel())
    row["train_s"] = round(train_s, 1)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="models/shapes-256")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--jobs", type=int, default=2, help="settings trained in parallel (1 thread each)")
    ap.add_argument("--only", default="", help="comma-separated setting names (default: all)")
    ap.add_argument("--out", default="reports/dro-sweep")
    a = ap.parse_args(argv)
    names = [n for n in SETTINGS if not a.only or n in a.only.split(",")]
    with ProcessPoolExecutor(a.jobs) as pool:
        futures = [pool.submit(run_setting, a.models, n, SETTINGS[n], a.steps, a.prompts) for n in names]
        rows = []
        for f in futures:
            rows.append(f.result())
            print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows).round(4)
    cloud_sha = json.loads((Path(a.models) / "cloud.json").read_text())["sha256"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sweep.csv", index=False)
    cols = ["setting", "auroc_interval", "auroc_entropy", "auroc_max_prob", "greedy_agreement", "reject_rate"]
    lines = ["# Inter-DRO weight sweep", "",
             f"Device trained {a.steps} steps per setting against the frozen cloud `{cloud_sha[:16]}…` "
             f"(`{a.models}`); signals on {a.prompts} held-out prompts ({int(df.positions.iloc[0])} positions). "
             f"Command: `python experiments/dro_sweep.py --models {a.models} --steps {a.steps} "
             f"--prompts {a.prompts}`.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
