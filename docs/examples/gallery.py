"""Render the figure gallery of docs/figures.md from results folders, with the Python API.

    python docs/examples/gallery.py --one runs/one --sweep1 runs/rtt --sweep2 runs/rtt-device \
        --map runs/rtt-uplink --compare runs/rtt-device runs/rtt-device-5g --out docs/figures

Each PNG is drawn by the function the report uses (``ciarsim.plots``), at 90 dpi and reduced to a
128-colour palette so that the gallery stays small; the reports themselves are 200 dpi.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

import ciarsim

DPI = 90


def save(fig, path: Path) -> None:
    """``fig`` as a small palette PNG at ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    with Image.open(buf) as im:
        im.convert("RGB").quantize(128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("one", "sweep1", "sweep2", "map"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    ap.add_argument("--compare", type=Path, nargs=2, required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    P = ciarsim.plots
    one, s1, s2 = ciarsim.load(a.one), ciarsim.load(a.sweep1), ciarsim.load(a.sweep2)
    figures = {
        "one_latency_breakdown": P.latency_breakdown(one),
        "one_quality_vs_cost": P.quality_vs_cost(one),
        "one_timeline_paper": P.timeline(one, paper=True),
        "one_tokens_ciar": P.token_map(one, "ciar"),
        "sweep1_latency_vs_rtt": P.latency_vs(s1),
        "sweep1_speedup_vs_rtt": P.speedup_vs(s1),
        "sweep2_latency_vs_rtt": P.latency_vs(s2),
        "sweep2_speedup_vs_rtt": P.speedup_vs(s2),
        "rtt_uplink_speedup_map": P.speedup_map(ciarsim.load(a.map)),
        "compare_latency_vs_rtt": P.compare_latency(*(ciarsim.load(d) for d in a.compare)),
    }
    for name, fig in figures.items():
        save(fig, a.out / f"{name}.png")


if __name__ == "__main__":
    main()
