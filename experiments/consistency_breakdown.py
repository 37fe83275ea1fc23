"""Where caption consistency is lost: per-attribute hit rates of cloud and device samples.

    python experiments/consistency_breakdown.py [--models models/shapes-256] [--prompts 200]
                                                [--out reports/consistency]

Caption consistency (the card's CLIP-score analogue) averages hits over a caption's attributes:
background kind and colour, and shape, colour and size of each object at its stated cell. This
splits that average by attribute and by the number of objects in the caption, for the same
held-out prompts and sampling settings as the model card (EVAL_SEED, CFG 3, T 1, seed 3):
real images (the ceiling), their VQ reconstructions, cloud samples and device-only samples.
Writes ``breakdown.csv`` and ``breakdown.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ciarsim.nn import checkpoints as ck  # noqa: E402
from ciarsim.nn.data import BACKGROUNDS, COLOUR_NAMES, EVAL_SEED, SHAPES, SIZES, make_dataset, parse_caption  # noqa: E402
from ciarsim.nn.gpt import generate  # noqa: E402
from ciarsim.nn.quality import load_classifier, predict  # noqa: E402
from ciarsim.nn.train import device_generate, get_preset  # noqa: E402

ATTRS = ["background kind", "background colour", "object shape", "object colour", "object size"]


def hits(images: np.ndarray, captions: list[str], classifier) -> pd.DataFrame:
    """One row per (image, attribute instance): which attribute, objects in the caption, hit."""
    pred = predict(classifier, images)
    rows = []
    for i, caption in enumerate(captions):
        a = parse_caption(caption)
        n = len(a.objects)
        rows.append((i, n, ATTRS[0], pred.bg_kind[i] == BACKGROUNDS.index(a.background_kind)))
        rows.append((i, n, ATTRS[1], pred.bg_colour[i] == COLOUR_NAMES.index(a.background_colour)))
        for o in a.objects:
            rows.append((i, n, ATTRS[2], pred.shape[i, o.cell] == 1 + SHAPES.index(o.shape)))
            rows.append((i, n, ATTRS[3], pred.colour[i, o.cell] == 1 + COLOUR_NAMES.index(o.colour)))
            rows.append((i, n, ATTRS[4], pred.size[i, o.cell] == 1 + SIZES.index(o.size)))
    return pd.DataFrame(rows, columns=["image", "n_objects", "attribute", "hit"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="models/shapes-256")
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--out", default="reports/consistency")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    p = get_preset("shapes-256")
    models = ck.load_models(a.models)
    classifier = load_classifier(Path(a.models) / "classifier.safetensors")
    data = make_dataset(a.prompts, EVAL_SEED)
    cap = torch.from_numpy(models.captions.encode_batch(data.captions))
    gen = torch.Generator().manual_seed(p.seed + 3)  # as the card's evaluation
    cloud = torch.cat([generate(models.cloud, cap[i:i + 100], p.cfg_scale, p.temperature, p.top_k, gen)
                       for i in range(0, len(cap), 100)])
    dev = torch.cat([device_generate(models.device, cap[i:i + 100], p.cfg_scale) for i in range(0, len(cap), 100)])
    vq = models.tokenizer
    sets = {"real images": data.images,
            "VQ reconstructions": vq.decode_code(vq.encode(torch.from_numpy(data.images))).numpy(),
            "cloud samples": vq.decode_code(cloud).numpy(),
            "device-only samples": vq.decode_code(dev).numpy()}
    frames = []
    for name, images in sets.items():
        df = hits(images, data.captions, classifier)
        frames.append(df.assign(images=name))
    df = pd.concat(frames)
    by_attr = df.pivot_table(index="attribute", columns="images", values="hit", aggfunc="mean").loc[ATTRS]
    per_image = df.groupby(["images", "image", "n_objects"])["hit"].mean().reset_index()
    by_n = per_image.pivot_table(index="n_objects", columns="images", values="hit", aggfunc="mean")
    counts = per_image[per_image.images == "cloud samples"].groupby("n_objects").size()
    by_n.index = [f"{n} object(s), {counts[n]} prompts: caption consistency" for n in by_n.index]
    overall = per_image.groupby("images")["hit"].mean().to_frame("all prompts: caption consistency").T
    table = pd.concat([by_attr, by_n, overall])[list(sets)].round(3)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "breakdown.csv")
    sha = models.card.get("checkpoints", {}).get("cloud", {}).get("sha256", "?")
    md = ["# Caption consistency by attribute", "",
          f"{a.prompts} held-out prompts (EVAL_SEED), CFG {p.cfg_scale}, T {p.temperature}, models `{a.models}` "
          f"(cloud `{sha[:16]}…`). Hit rate = share of that attribute the classifier finds at the stated cell.",
          f"Command: `python experiments/consistency_breakdown.py --models {a.models} --prompts {a.prompts}`.", "",
          "| | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    md += [f"| {idx} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for idx, row in table.iterrows()]
    (out / "breakdown.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
