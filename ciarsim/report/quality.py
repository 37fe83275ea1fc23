"""Cost against quality: cloud forward passes (% of base) and mean latency against caption
consistency and FD, one style per policy and every point labelled directly (no legend to decode).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ciarsim.report.labels import time_unit as _time_unit
from ciarsim.report.stats import CI
from ciarsim.report.style import DOUBLE_IN, PolicyStyle, family, new_figure

# ----------------------------------------------------------------------------------------------
# threshold sweep, cost against quality


def quality_vs_cost(summary: pd.DataFrame, styles: dict[str, PolicyStyle]) -> Figure:
    """Caption consistency and FD against cloud passes (% of base), and caption consistency
    against mean latency; one line per policy family across the points (sorted by cost), every
    family labelled at its last point (labels pushed apart, with a leader line when moved)."""
    fams = _families(summary, styles)
    panels = [("cloud_passes_pct", "caption_consistency"), ("latency_mean_ms", "caption_consistency")]
    if summary["fd"].notna().any():
        panels.insert(1, ("cloud_passes_pct", "fd"))
    fig = new_figure(DOUBLE_IN, 3.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    unit, div = _time_unit(summary["latency_mean_ms"].tolist())
    labels = {"cloud_passes_pct": "Cloud passes (% of base)",
              "latency_mean_ms": f"Mean latency ({unit})",
              "caption_consistency": "Caption consistency (higher is better)",
              "fd": "FD (lower is better)"}  # fmt: skip
    for ax, (xc, yc) in zip(axes, panels):
        anchors = []
        for fam, (style, d) in fams.items():
            d = d.sort_values([xc, yc])
            xv = d[xc].to_numpy(float) / (div if xc == "latency_mean_ms" else 1.0)
            yv = d[yc].to_numpy(float)
            ax.plot(xv, yv, **(style.line_kw() | {"markersize": style.markersize * 0.9}))
            if yc + CI in d and xc == "cloud_passes_pct" and np.isfinite(d[yc + CI]).any():
                ax.errorbar(xv, yv, yerr=d[yc + CI], fmt="none", ecolor=style.color,
                            elinewidth=0.6, capsize=1.0, alpha=0.45)  # fmt: skip
            ok = np.isfinite(xv) & np.isfinite(yv)
            if ok.any():
                anchors.append((fam, float(xv[ok][-1]), float(yv[ok][-1]), style.color))
        ax.set_xlabel(labels[xc])
        ax.set_ylabel(labels[yc])
        ax.margins(x=0.18, y=0.12)
        _better(ax, up=yc != "fd", left=True)
        direct_labels(ax, anchors)
    return fig


def _better(ax, up: bool, left: bool) -> None:
    """A small arrow in a corner pointing to where the better points are."""
    x0, x1 = (0.2, 0.05) if left else (0.8, 0.95)
    y0, y1 = (0.8, 0.95) if up else (0.2, 0.05)
    ax.annotate("better", xy=(x1, y1), xytext=(x0, y0), xycoords="axes fraction",
                ha="center", va="center", fontsize=6.5, color="#666666",
                arrowprops={"arrowstyle": "->", "color": "#666666", "linewidth": 0.8})  # fmt: skip


def direct_labels(ax, anchors: list[tuple[str, float, float, str]], fontsize: float = 6.0) -> None:
    """Write each (text, x, y, colour) next to its point, at the free spot nearest to it (right or
    left of the point first, else further away with a thin leader line) where it touches no label
    placed before and no other point. Deterministic: fixed candidates, first best wins."""
    if not anchors:
        return
    ax.autoscale_view()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    fig_w, fig_h = ax.get_figure(root=True).get_size_inches()
    box = ax.get_position()
    w_in, h_in = fig_w * box.width * 0.85, fig_h * box.height * 0.85  # after labels and ticks
    h = fontsize * 1.3 / 72 / h_in  # label height, axes fraction
    mw, mh = 4.0 / 72 / w_in, 4.0 / 72 / h_in  # half-size of a marker, axes fraction
    pts = [((x - x0) / ((x1 - x0) or 1), (y - y0) / ((y1 - y0) or 1)) for _, x, y, _ in anchors]
    markers = [(px - mw, py - mh, px + mw, py + mh) for px, py in pts]
    placed: list[tuple[float, float, float, float]] = []
    ys = np.arange(h / 2, 1 - h / 2 + 1e-9, h / 3)
    for k, (text, _, _, color) in enumerate(anchors):
        fx, fy = pts[k]
        width = len(text) * fontsize * 0.58 / 72 / w_in
        xs = [fx + mw + 0.008, fx - mw - 0.008 - width]
        xs += [fx + d for d in (0.1, 0.2, 0.3)] + [fx - width - d for d in (0.1, 0.2, 0.3)]
        best, best_d = (xs[0], fy), math.inf
        for lx in xs:
            if lx < 0 or lx + width > 1.02:
                continue
            for ly in ys:
                cx = lx if lx > fx else lx + width  # where a leader line would end
                d = math.hypot(cx - fx, (ly - fy) * 1.5) + (0 if abs(ly - fy) < h / 2 else 0.02)
                if d >= best_d:
                    continue
                b = (lx, ly - h / 2, lx + width, ly + h / 2)
                if any(_hit(b, p) for p in placed) or any(
                        _hit(b, m) for j, m in enumerate(markers) if j != k):  # fmt: skip
                    continue
                best, best_d = (lx, ly), d
        lx, ly = best
        placed.append((lx, ly - h / 2, lx + width, ly + h / 2))
        far = abs(ly - fy) > h * 0.6 or lx > fx + mw + 0.02 or lx + width < fx - mw - 0.02
        ax.annotate(text, xy=(fx, fy), xytext=(lx, ly), xycoords="axes fraction",
                    textcoords="axes fraction", fontsize=fontsize, color=color, va="center",
                    ha="left", annotation_clip=False,
                    arrowprops=({"arrowstyle": "-", "color": color, "linewidth": 0.5,
                                 "shrinkA": 0, "shrinkB": 2} if far else None))  # fmt: skip


def _hit(a: tuple, b: tuple) -> bool:
    """Whether boxes (x0, y0, x1, y1) overlap."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _families(summary: pd.DataFrame, styles) -> dict[str, tuple[PolicyStyle, pd.DataFrame]]:
    """Policy family -> (style, its rows): ``ciar-t0.1`` and ``ciar-t0.3`` are one line."""
    out: dict[str, tuple[PolicyStyle, pd.DataFrame]] = {}
    for pol in dict.fromkeys(summary["policy"]):
        fam = family(pol)
        rows = summary[summary["policy"] == pol]
        if fam in out:
            out[fam] = (out[fam][0], pd.concat([out[fam][1], rows]))
        else:
            out[fam] = (styles.get(fam, styles[pol]), rows)
    return out
