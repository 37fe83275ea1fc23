"""Speed-up vs base figures: against one swept value (with the break-even point marked) and the
heat map over RTT x uplink bandwidth (with the break-even contour).

Speed-up at a point = mean latency of ``base`` / of the policy (``summary_table``); > 1 is faster.
Break-even along a swept value is where the speed-up line crosses 1, interpolated linearly between
neighbouring swept values (``break_even``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke

from ciarsim.report.figures import facet_rows, legend
from ciarsim.report.labels import num as _num, param_axis, use_log, x_axis
from ciarsim.report.stats import CI
from ciarsim.report.style import COLUMN_IN, DOUBLE_IN, PolicyStyle, new_figure

SPEEDUP = "speedup_vs_base"


def break_even(xs: np.ndarray, speedup: np.ndarray) -> list[tuple[float, str]]:
    """Where a speed-up line crosses 1 between swept values ``xs`` (sorted): (x, direction), the
    direction ``"down"`` when the policy stops beating base as x grows, else ``"up"``; linear
    interpolation between the two neighbouring values."""
    out = []
    for i in range(len(xs) - 1):
        a, b = float(speedup[i]) - 1.0, float(speedup[i + 1]) - 1.0
        if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
            continue  # a crossing exactly at a swept value ends the segment before it
        if a * b < 0 or b == 0:
            x = float(xs[i] + (xs[i + 1] - xs[i]) * a / (a - b))
            out.append((x, "down" if a > b else "up"))
    return out


def speedup_vs(summary: pd.DataFrame, x: str, panels: list[tuple[str, list[str]]],
               styles: dict[str, PolicyStyle]) -> Figure:  # fmt: skip
    """Speed-up vs base of each non-base policy against swept ``x`` (95% CI bands), the 1x line,
    and each crossing of it marked with an open circle and its x value; one row of panels per
    facet (title, point keys)."""
    label, factor = param_axis(x)
    xs_all = summary[x].astype(float) * factor
    log_x = use_log(x, xs_all)
    policies = [p for p in dict.fromkeys(summary["policy"]) if p != "base"]
    width = DOUBLE_IN if len(panels) > 1 or len(policies) > 4 else COLUMN_IN
    fig = new_figure(width, 0.5 + 2.4 * len(panels) + 0.2 * math.ceil(len(policies) / 5))
    rows = facet_rows(fig, [t for t, _ in panels], 1, width)
    for (_, keys), (ax,) in zip(panels, rows):
        at = summary[summary["point"].isin(keys)]
        ax.axhline(1.0, color="black", linewidth=0.9, zorder=1)
        for pol in policies:
            d = at[at["policy"] == pol].sort_values(x)
            xv = d[x].astype(float).to_numpy() * factor
            y, half = d[SPEEDUP].to_numpy(), d[SPEEDUP + CI].to_numpy()
            st = styles[pol]
            ax.plot(xv, y, **st.line_kw())
            if np.isfinite(half).any():
                ax.fill_between(xv, y - half, y + half, color=st.color, alpha=0.15, linewidth=0)
            for bx, _ in break_even(xv, y):
                ax.plot([bx], [1.0], marker="o", markersize=7, markerfacecolor="white",
                        markeredgecolor=st.color, markeredgewidth=1.4, zorder=5)  # fmt: skip
                ax.annotate(_num(float(f"{bx:.3g}")), (bx, 1.0), xytext=(0, -10),
                            textcoords="offset points", ha="center", va="top", fontsize=6.5,
                            color=st.color,
                            path_effects=[withStroke(linewidth=2, foreground="white")])  # fmt: skip
        ax.set_yscale("log")
        _speedup_ticks(ax, at[at["policy"].isin(policies)][SPEEDUP].to_numpy(float))
        ax.set_ylabel("Speed-up vs base (×, log)\nabove 1×: faster than base")
        ax.set_xlabel(label)
        x_axis(ax, xs_all, log_x)
    legend(fig, policies, styles)
    return fig


def _speedup_ticks(ax, values: np.ndarray) -> None:
    finite = values[np.isfinite(values) & (values > 0)]
    lo = min(float(finite.min()), 0.9) if len(finite) else 0.5
    hi = max(float(finite.max()), 1.1) if len(finite) else 2.0
    nice = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    if hi / lo < 20:
        nice = [0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10]
    ticks = [v for v in nice if lo / 1.15 <= v <= hi * 1.15]
    ax.set_ylim(lo / 1.15, hi * 1.15)
    ax.set_yticks(ticks, [f"{v:g}×" for v in ticks])
    ax.minorticks_off()


def break_even_text(summary: pd.DataFrame, x: str, keys: list[str]) -> str:
    """Where each policy crosses break-even against ``x`` among the points ``keys``, and which
    policies stay on one side over the whole range (for a caption)."""
    label, factor = param_axis(x)
    at = summary[summary["point"].isin(keys) & (summary["policy"] != "base")]
    cross, side = [], {"faster": [], "slower": []}
    for pol in dict.fromkeys(at["policy"]):
        d = at[at["policy"] == pol].sort_values(x)
        y = d[SPEEDUP].to_numpy(float)
        found = break_even(d[x].astype(float).to_numpy() * factor, y)
        if found:
            cross.append(f"{pol} at " + ", ".join(
                f"{bx:.3g} ({'stops' if way == 'down' else 'starts'} beating base)"
                for bx, way in found))  # fmt: skip
        elif np.isfinite(y).any() and (np.nanmin(y) > 1 or np.nanmax(y) < 1):
            side["faster" if np.nanmin(y) > 1 else "slower"].append(pol)
    parts = [f"break-even against {label}: " + "; ".join(cross)] if cross else []
    parts += [f"{k} than base over the whole range: {', '.join(v)}" for k, v in side.items() if v]
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:] if parts else ""


# ----------------------------------------------------------------------------------------------
# speed-up heat map


def speedup_map(grids: list[tuple[str, pd.DataFrame]], x: str, y: str) -> Figure:
    """Heat maps of speed-up vs base (policy rows: ``y`` values, columns: ``x`` values), log colour
    scale centred on 1 (blue faster than base, red slower), break-even contour where it is 1."""
    finite = np.concatenate([g.to_numpy(float).ravel() for _, g in grids])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    m = max(float(np.max(finite)), 1.0 / float(np.min(finite)), 1.05) if len(finite) else 2.0
    norm = LogNorm(vmin=1.0 / m, vmax=m)
    ncols = 2 if len(grids) in (2, 4) else min(len(grids), 3)
    nrows = math.ceil(len(grids) / ncols)
    width = COLUMN_IN if ncols == 1 else DOUBLE_IN
    fig = new_figure(width, 0.4 + nrows * (2.4 if ncols > 1 else 2.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    mesh = None
    cell_in = (width - 1.6) / ncols / max(g.shape[1] for _, g in grids)  # less labels, colorbar
    for ax, (title, grid) in zip(axes.ravel(), grids):
        mesh = _heat(ax, grid, norm, cell_in)
        ax.set_title(title)
        ax.set_xlabel(param_axis(x)[0])
        ax.set_ylabel(param_axis(y)[0])
    for ax in axes.ravel()[len(grids):]:
        ax.set_visible(False)
    cbar = fig.colorbar(mesh, ax=axes, shrink=0.9, aspect=25)
    cbar.set_label("Speed-up vs base (×, log scale)")
    cbar.ax.minorticks_off()
    nice = (0.125, 0.25, 0.5, 1, 2, 4, 8) if m < 10 else (0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5,
                                                             10, 20, 50)  # fmt: skip
    ticks = [v for v in nice if 1 / m <= v <= m]
    cbar.set_ticks(ticks, labels=[f"{v:g}×" for v in ticks])
    cbar.ax.axhline(1.0, color="black", linewidth=1.2)
    return fig


def break_even_note(grids: list[tuple[str, pd.DataFrame]]) -> str:
    """Which policies never cross break-even inside the swept range (for a caption)."""
    notes = []
    for title, grid in grids:
        z = grid.to_numpy(float)
        z = z[np.isfinite(z)]
        if len(z) and z.max() < 1.0:
            notes.append(f"{title} is slower than base everywhere")
        elif len(z) and z.min() > 1.0:
            notes.append(f"{title} is faster than base everywhere")
    return "; ".join(notes)


def _cell_label(v: float, cell_in: float) -> str:
    """A cell's value, as long as the cell is wide enough for (6.5 pt: ~0.07 in a character)."""
    if cell_in >= 0.45:
        return f"{v:.2f}×" if v < 10 else f"{v:.0f}×"
    if cell_in >= 0.34:
        return f"{v:.2f}" if v < 10 else f"{v:.0f}"
    return f"{v:.2g}" if cell_in >= 0.2 else ""


def _heat(ax, grid: pd.DataFrame, norm: LogNorm, cell_in: float):
    z = grid.to_numpy(float)
    ny, nx = z.shape
    mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(z),
                         cmap="RdBu", norm=norm, shading="flat")  # fmt: skip
    ax.set_xticks(range(nx), [_num(v) for v in grid.columns])
    ax.set_yticks(range(ny), [_num(v) for v in grid.index])
    ax.grid(False)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    for (i, j), v in np.ndenumerate(z):
        if np.isfinite(v):
            dark = abs(math.log(v)) > 0.55 * math.log(norm.vmax)
            ink, halo = ("white", "black") if dark else ("black", "white")
            ax.text(j, i, _cell_label(v, cell_in), ha="center", va="center",
                    fontsize=6.5 if cell_in >= 0.34 else 5.5, color=ink,
                    path_effects=[withStroke(linewidth=1.2, foreground=halo, alpha=0.5)])
    finite = z[np.isfinite(z)]
    if nx >= 2 and ny >= 2 and len(finite) and finite.min() < 1.0 < finite.max():
        with np.errstate(invalid="ignore", divide="ignore"):
            logz = np.ma.masked_invalid(np.log(z))
        ax.contour(np.arange(nx), np.arange(ny), logz, levels=[0.0], colors="black",
                   linewidths=1.6)  # fmt: skip
    return mesh


