"""Which interval the uncertainty U should come from under classifier-free guidance.

    python experiments/u_under_cfg.py [--models models/shapes-256] [--validation 96] [--card 200]
                                      [--out reports/u-under-cfg]

The device runs a conditional and an unconditional branch; the proposal uses the guided centre
c_u + s (c_c - c_u). The paper does not say which interval U is computed on. This scores the
candidates the way the model card does (teacher-forced on held-out cloud samples, CFG 3, rejection
label 1 - min(1, p(x)/q(x)) > 0.5 for the device's greedy token x; greedy disagreement as the
second label), next to entropy and 1 - max prob of the guided and of the conditional proposal:

- conditional interval: U of the conditional branch, the interval Inter-DRO trains (shipped);
- interval arithmetic: guided centre with radius s r_c + |s - 1| r_u (shipped until 2026-11-27);
- guided centre, conditional radius; and the unconditional branch's interval.

Two prompt sets from ``ciarsim.nn.splits``: ``validation`` (the validation split), which chooses
the variant, and ``card`` (the test split's first 200 prompts and the card's cloud samples), which
reports it. (Until 2026-12 the validation prompts were EVAL_SEED prompts from index 5000.) Writes ``u_under_cfg.csv`` and
``u_under_cfg.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ciarsim.nn import checkpoints as ck  # noqa: E402
from ciarsim.nn import splits  # noqa: E402
from ciarsim.nn.device import guide, head_out  # noqa: E402
from ciarsim.nn.gpt import generate  # noqa: E402
from ciarsim.nn.train import auroc, get_preset, greedy_rejection, teacher_forced_batches  # noqa: E402



def entropy(log_p: torch.Tensor) -> torch.Tensor:
    return -(log_p.exp() * log_p).sum(-1)


def signals(models, cap: torch.Tensor, scale: float, seed: int, batch: int = 16) -> pd.DataFrame:
    """Per image position: the two labels and every candidate score (one column each)."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.cat([generate(models.cloud, cap[i:i + 100], scale, 1.0, 0, gen) for i in range(0, len(cap), 100)])
    cols: dict[str, list[torch.Tensor]] = {}
    for p, out in teacher_forced_batches(models.cloud, models.device, cap, codes, scale, batch):
        g = guide(out, scale)
        x, reject = greedy_rejection(p, g.p_mid)
        rc, ru = out.r.chunk(2)
        cond, uncond = (head_out(None, c, r) for c, r in zip(out.c.chunk(2), (rc, ru)))
        scores = {
            "reject": reject,
            "disagree": x.squeeze(-1) != p.argmax(-1),
            "U, conditional interval (shipped)": g.U,
            "U, interval arithmetic s r_c + (s-1) r_u": head_out(None, g.c, scale * rc + abs(scale - 1) * ru).U,
            "U, guided centre + conditional radius": head_out(None, g.c, rc).U,
            "U, unconditional interval": uncond.U,
            "entropy, guided proposal": entropy(g.log_p_mid),
            "1 - max prob, guided proposal": 1 - g.p_mid.max(-1).values,
            "entropy, conditional branch": entropy(cond.log_p_mid),
            "1 - max prob, conditional branch": 1 - cond.p_mid.max(-1).values,
        }
        for k, v in scores.items():
            cols.setdefault(k, []).append(v.flatten())
    return pd.DataFrame({k: torch.cat(v).numpy() for k, v in cols.items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="models/shapes-256")
    ap.add_argument("--validation", type=int, default=96, help="validation-split prompts (from index 0)")
    ap.add_argument("--card", type=int, default=200, help="the card's test-split prompts (from index 0)")
    ap.add_argument("--out", default="reports/u-under-cfg")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    p = get_preset("shapes-256")
    models = ck.load_models(a.models)
    rows = []
    for name, split, n in (("validation", "validation", a.validation), ("card", "test", a.card)):
        captions = splits.scenes(split, n).captions
        start = f"{split} split"
        df = signals(models, torch.from_numpy(models.captions.encode_batch(captions)), p.cfg_scale, p.seed + 3)
        for score in df.columns.drop(["reject", "disagree"]):
            rows.append({"prompts": f"{name} ({n} prompts from {start}, {len(df)} positions)", "score": score,
                         "auroc_reject": round(auroc(df[score], df["reject"]), 4),
                         "auroc_greedy_disagreement": round(auroc(df[score], df["disagree"]), 4),
                         "reject_rate": round(float(df["reject"].mean()), 4)})
    table = pd.DataFrame(rows)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "u_under_cfg.csv", index=False)
    sha = {k: models.card.get("checkpoints", {}).get(k, {}).get("sha256", "?")[:16] for k in ("cloud", "device")}
    md = ["# Uncertainty under classifier-free guidance", "",
          f"Models `{a.models}` (cloud `{sha['cloud']}…`, device `{sha['device']}…`), CFG {p.cfg_scale}, "
          "teacher-forced on cloud samples (T 1, seed 3). AUROC of each score against the card's rejection "
          "label and against greedy disagreement. The validation prompts chose the variant; the card's "
          "prompts report it.",
          f"Command: `python experiments/u_under_cfg.py --models {a.models} --validation {a.validation} "
          f"--card {a.card}`.", ""]
    for prompts, part in table.groupby("prompts", sort=False):
        md += [f"## {prompts}, reject rate {part.reject_rate.iloc[0]:.3f}", "",
               "| score | AUROC, rejection | AUROC, greedy disagreement |", "|---|---|---|"]
        md += [f"| {r.score} | {r.auroc_reject:.4f} | {r.auroc_greedy_disagreement:.4f} |" for r in part.itertuples()]
        md.append("")
    (out / "u_under_cfg.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
