"""Token maps: where each token of a sample image came from, and the device's uncertainty U.

Reads the arrays of ``samples/<policy>.npz`` (``tokens`` / ``source`` / ``u`` of shape (n, T),
T = g * g tokens in raster order, optional ``pixels`` (n, H, W, 3) and ``captions`` (n,)). One
column per image: the decoded image, a g x g map coloured by ``ciarsim.trace.SOURCE_*`` and a
g x g heat map of U (grey where the device computed none: cloud-made tokens).
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ciarsim.report.style import DOUBLE_IN, SOURCE_COLORS, SOURCE_LABELS, new_figure

MAX_IMAGES = 4


def source_shares(arrays: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of the sample tokens from each source (label -> fraction in [0, 1])."""
    src = np.asarray(arrays["source"]).ravel()
    return {lab: float(np.mean(src == k)) if len(src) else math.nan
            for k, lab in enumerate(SOURCE_LABELS)}  # fmt: skip


def token_map(arrays: dict[str, np.ndarray], title: str, n: int = MAX_IMAGES,
              tau: float | None = None) -> Figure:  # fmt: skip
    """The token-map figure of one policy's samples (first ``n`` images); ``tau``: the policy's
    threshold on U, marked on the colour bar (the range stretches to include it; a log scale when
    U is positive and spans 100x or more)."""
    source = np.asarray(arrays["source"])[:n]
    u = np.asarray(arrays["u"], dtype=float)[:n]
    k, T = source.shape
    g = math.isqrt(T)
    assert g * g == T, "token maps need a square token grid"
    has_pixels = "pixels" in arrays
    has_u = bool(np.isfinite(u).any())
    rows = ["image"] * has_pixels + ["source"] + ["u"] * has_u
    fig = new_figure(min(DOUBLE_IN, 1.2 + 1.6 * k), 1.0 + 1.6 * len(rows))
    axes = fig.subplots(len(rows), k, squeeze=False)
    captions = arrays.get("captions")
    cmap = ListedColormap(SOURCE_COLORS)
    u_img = None
    if has_u:
        finite = u[np.isfinite(u)]
        norm = u_norm(finite, tau)
    for j in range(k):
        col = axes[:, j]
        for ax in col:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
        r = 0
        if has_pixels:
            col[r].imshow(np.asarray(arrays["pixels"])[j], interpolation="nearest")
            r += 1
        col[r].imshow(source[j].reshape(g, g), cmap=cmap, vmin=-0.5, vmax=3.5)
        _token_grid(col[r], g)
        if has_u:
            masked = np.ma.masked_invalid(u[j].reshape(g, g))
            cm = _viridis_with_grey()
            u_img = col[r + 1].imshow(masked, cmap=cm, norm=norm)
            _token_grid(col[r + 1], g)
        top = f"sample {j}"
        if captions is not None and j < len(captions):
            chars = int(26 * min(1.0, (DOUBLE_IN - 1.2) / k / 1.45))  # 6 pt in a column's width
            top = textwrap.shorten(str(captions[j]), 3 * chars, placeholder=" …")
            top = "\n".join(textwrap.wrap(top, chars))
        col[0].set_title(top, fontsize=6)
    names = {"image": "decoded image", "source": "token source", "u": "U (uncertainty)"}
    for ax, row in zip(axes[:, 0], rows):
        ax.set_ylabel(names[row])
    if u_img is not None:
        cbar = fig.colorbar(u_img, ax=axes[-1, :], shrink=0.9, aspect=15)
        cbar.set_label("U, 2nd-98th pct (grey: none)")
        if tau is not None and norm.vmin <= tau <= norm.vmax:
            cbar.ax.axhline(tau, color="#D55E00", linewidth=1.6)
            cbar.ax.annotate(f"τ = {tau:.3g}", (0.0, tau), xycoords=("axes fraction", "data"),
                             xytext=(-3, 0), textcoords="offset points", ha="right",
                             va="center", fontsize=6.5, color="#D55E00",
                             annotation_clip=False)  # fmt: skip
    handles = [Patch(facecolor=c, edgecolor="#777777", linewidth=0.4, label=lab) for c, lab in zip(SOURCE_COLORS, SOURCE_LABELS)]
    fig.legend(handles=handles, loc="outside lower center", ncols=2 if k < 3 else 4)
    fig.suptitle(f"{title}: {k} sample image{'s' * (k > 1)}", fontsize=8.5)
    return fig


def u_norm(finite: np.ndarray, tau: float | None):
    """The colour scale of U: its robust range (2nd-98th percentile: one outlier must not flatten
    the map), stretched to include ``tau``; logarithmic when positive and spanning 100x or more."""
    from matplotlib.colors import LogNorm, Normalize  # noqa: PLC0415

    lo, hi = (float(x) for x in np.percentile(finite, [2, 98]))
    if tau is not None and np.isfinite(tau):
        lo, hi = min(lo, tau), max(hi, tau)
    if lo > 0 and hi / lo >= 100:
        return LogNorm(vmin=lo, vmax=hi)
    return Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)


def _token_grid(ax, g: int) -> None:
    """Thin white lines between tokens when there are few enough to see them."""
    if g <= 32:
        for v in np.arange(g + 1) - 0.5:
            ax.axhline(v, color="white", linewidth=0.3)
            ax.axvline(v, color="white", linewidth=0.3)


def _viridis_with_grey():
    from matplotlib import colormaps  # noqa: PLC0415

    return colormaps["viridis"].with_extremes(bad="#DDDDDD")
