"""Report figures, one function each. They draw tables made by ``ciarsim.report.stats`` and return
a matplotlib ``Figure``; they compute nothing a reader would need to check elsewhere.

Call them inside ``style.figure_style()`` so fonts and sizes are the report's.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patheffects import withStroke
from matplotlib.patches import Patch

from ciarsim.report.stats import CI, LATENCY_STATS
from ciarsim.report.style import (
    COLUMN_IN, COMPONENTS, DOUBLE_IN, PolicyStyle, family, new_figure,
)  # fmt: skip

# swept path -> (axis label, factor applied to the values, short name for panel titles, unit)
PARAMS = {
    "network.rtt_ms": ("RTT (ms)", 1.0, "RTT", "ms"),
    "network.uplink_mbps": ("Uplink bandwidth (Mbit/s)", 1.0, "uplink", "Mbit/s"),
    "network.downlink_mbps": ("Downlink bandwidth (Mbit/s)", 1.0, "downlink", "Mbit/s"),
    "network.loss_rate": ("Packet loss rate (%)", 100.0, "loss", "%"),
    "network.jitter_ms": ("Jitter (ms)", 1.0, "jitter", "ms"),
    "workload.arrival.rate_per_s": ("Arrival rate (images/s)", 1.0, "arrivals", "images/s"),
    "workload.arrival.devices": ("Devices (phones sharing the cloud)", 1.0, "devices", ""),
}
_SUFFIX_UNITS = {"_ms": "ms", "_mbps": "Mbit/s", "_per_s": "1/s", "_bytes": "bytes", "_s": "s"}
STAT_TITLES = {"mean": "mean latency", "p50": "median latency", "p95": "p95 latency",
               "p99": "p99 latency"}  # fmt: skip


def param_axis(path: str) -> tuple[str, float]:
    """(axis label with unit, factor) for a swept parameter path."""
    if path in PARAMS:
        return PARAMS[path][0], PARAMS[path][1]
    leaf = path.rsplit(".", 1)[-1]
    for suffix, unit in _SUFFIX_UNITS.items():
        if leaf.endswith(suffix):
            return f"{path} ({unit})", 1.0
    return path, 1.0


def param_text(path: str, value: object) -> str:
    """A swept value for a panel title: ``RTT 20 ms``, ``ciar τ 0.3``."""
    if path in PARAMS:
        _, factor, short, unit = PARAMS[path]
        v = value * factor if isinstance(value, (int, float)) else value
        return f"{short} {_num(v)} {unit}".strip()
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "policies":
        field = {"tau": "τ", "rho": "ρ", "gamma": "γ"}.get(parts[2], parts[2])
        return f"{parts[1]} {field} {_num(value)}"
    return f"{path} = {_num(value)}"


def combo_text(combo: dict) -> str:
    return ", ".join(param_text(k, v) for k, v in combo.items())


def _num(v: object) -> str:
    return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)


def _time_unit(values_ms: Sequence[float]) -> tuple[str, float]:
    """Seconds when latencies exceed 2 s, else milliseconds: (unit, divisor)."""
    finite = [v for v in values_ms if np.isfinite(v)]
    return ("s", 1000.0) if finite and max(finite) > 2000.0 else ("ms", 1.0)


def use_log(path: str, xs: pd.Series) -> bool:
    """Log x for bandwidths spanning 10x or more, and for anything spanning 100x or more."""
    lo, hi = float(xs.min()), float(xs.max())
    if lo <= 0:
        return False
    return hi / lo >= (10 if path.endswith("_mbps") else 100)


def x_axis(ax, xs: pd.Series, log: bool) -> None:
    """Log scale if asked; ticks at the swept values (when there are few) in plain numbers."""
    if log:
        ax.set_xscale("log")
    values = sorted(set(xs.astype(float).tolist()))
    if len(values) <= 8:
        ax.set_xticks(values, [_num(v) for v in values])
        ax.minorticks_off()


def _legend(fig: Figure, labels: Sequence[str], styles: dict[str, PolicyStyle],
            extra: Sequence[Line2D] = ()) -> None:  # fmt: skip
    handles = [Line2D([], [], label=lab, **styles[lab].line_kw()) for lab in labels]
    handles += list(extra)
    ncols = min(len(handles), 4 if fig.get_figwidth() < 4 else 6)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, handlelength=2.6,
               columnspacing=1.2)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# 1 and 7: latency against a swept parameter


def latency_vs(summary: pd.DataFrame, x: str, panels: list[tuple[str, list[str]]],
               styles: dict[str, PolicyStyle], stats: Sequence[str] = ("mean", "p95"),
               log_x: bool | None = None) -> Figure:  # fmt: skip
    """One line per policy of each latency statistic against ``x``, with 95% CI bands.

    ``panels``: (title, point keys) per panel row, e.g. one row per uplink bandwidth.
    """
    label, factor = param_axis(x)
    cols = [LATENCY_STATS[s] for s in stats]
    unit, div = _time_unit(summary[cols].to_numpy().ravel().tolist())
    xs = summary[x].astype(float) * factor
    if log_x is None:
        log_x = use_log(x, xs)
    width = DOUBLE_IN if len(stats) > 1 else COLUMN_IN
    fig = new_figure(width, 0.6 + 1.9 * len(panels) + 0.25 * math.ceil(len(styles) / 4))
    axes = fig.subplots(len(panels), len(stats), squeeze=False, sharex=True)
    policies = list(dict.fromkeys(summary["policy"]))
    for r, (title, keys) in enumerate(panels):
        at = summary[summary["point"].isin(keys)]
        for c, (stat, col) in enumerate(zip(stats, cols)):
            ax = axes[r, c]
            for pol in policies:
                d = at[at["policy"] == pol].sort_values(x)
                xv = d[x].astype(float).to_numpy() * factor
                y, half = d[col].to_numpy() / div, d[col + CI].to_numpy() / div
                ax.plot(xv, y, **styles[pol].line_kw())
                if np.isfinite(half).any():
                    ax.fill_between(xv, y - half, y + half, color=styles[pol].color, alpha=0.18,
                                    linewidth=0)  # fmt: skip
            ax.set_title(f"{STAT_TITLES[stat]}" + (f" — {title}" if title else ""))
            ax.set_ylabel(f"{STAT_TITLES[stat].capitalize()} ({unit})")
            x_axis(ax, xs, log_x)
            if r == len(panels) - 1:
                ax.set_xlabel(label)
    _legend(fig, policies, styles)
    return fig


def overlay(sides: list[tuple[str, pd.DataFrame]], x: str, styles: dict[str, PolicyStyle],
            stats: Sequence[str] = ("mean", "p95")) -> Figure:  # fmt: skip
    """Two result sets against ``x``: the first solid with filled markers, the second dashed with
    open markers; one colour and marker per policy, 95% CI bands."""
    label, factor = param_axis(x)
    cols = [LATENCY_STATS[s] for s in stats]
    allv = pd.concat([d for _, d in sides])
    unit, div = _time_unit(allv[cols].to_numpy().ravel().tolist())
    xs = allv[x].astype(float) * factor
    log_x = use_log(x, xs)
    policies = list(dict.fromkeys(allv["policy"]))
    fig = new_figure(DOUBLE_IN, 2.6 + 0.25 * math.ceil((len(policies) + 2) / 6))
    axes = fig.subplots(1, len(stats), squeeze=False)[0]
    dash = ("-", "--")
    for ax, stat, col in zip(axes, stats, cols):
        for k, (_, d) in enumerate(sides):
            for pol in policies:
                p = d[d["policy"] == pol].sort_values(x)
                if p.empty:
                    continue
                xv = p[x].astype(float).to_numpy() * factor
                y, half = p[col].to_numpy() / div, p[col + CI].to_numpy() / div
                kw = styles[pol].line_kw() | {"linestyle": dash[k % 2]}
                if k % 2:
                    kw["markerfacecolor"] = "white"
                ax.plot(xv, y, **kw)
                if np.isfinite(half).any():
                    ax.fill_between(xv, y - half, y + half, color=styles[pol].color, alpha=0.12,
                                    linewidth=0)  # fmt: skip
        ax.set_title(STAT_TITLES[stat])
        ax.set_xlabel(label)
        ax.set_ylabel(f"{STAT_TITLES[stat].capitalize()} ({unit})")
        x_axis(ax, xs, log_x)
    plain = {p: PolicyStyle(styles[p].color, styles[p].marker, "-", styles[p].markersize)
             for p in policies}  # fmt: skip
    extra = [Line2D([], [], color="#444444", linestyle=dash[k % 2], marker="o",
                    markerfacecolor="white" if k % 2 else "#444444", label=name)
             for k, (name, _) in enumerate(sides)]  # fmt: skip
    _legend(fig, policies, plain, extra)
    return fig


# ----------------------------------------------------------------------------------------------
# 2: speed-up heat map


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


# ----------------------------------------------------------------------------------------------
# 3: threshold sweep, cost against quality


def quality_vs_cost(summary: pd.DataFrame, styles: dict[str, PolicyStyle]) -> Figure:
    """Caption consistency and FD against cloud passes (% of base), and caption consistency
    against mean latency; one line per policy family across the points (sorted by cost)."""
    fams = _families(summary, styles)
    panels = [("cloud_passes_pct", "caption_consistency"), ("latency_mean_ms", "caption_consistency")]
    if summary["fd"].notna().any():
        panels.insert(1, ("cloud_passes_pct", "fd"))
    fig = new_figure(DOUBLE_IN, 2.5 + 0.25 * math.ceil(len(fams) / 6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    unit, div = _time_unit(summary["latency_mean_ms"].tolist())
    labels = {"cloud_passes_pct": "Cloud passes (% of base)",
              "latency_mean_ms": f"Mean latency ({unit})",
              "caption_consistency": "Caption consistency (higher is better)",
              "fd": "FD (lower is better)"}  # fmt: skip
    for ax, (xc, yc) in zip(axes, panels):
        for fam, (style, d) in fams.items():
            d = d.sort_values([xc, yc])
            xv = d[xc].to_numpy() / (div if xc == "latency_mean_ms" else 1.0)
            ax.plot(xv, d[yc].to_numpy(), **style.line_kw())
            if yc + CI in d and xc == "cloud_passes_pct" and np.isfinite(d[yc + CI]).any():
                ax.errorbar(xv, d[yc], yerr=d[yc + CI], fmt="none", ecolor=style.color,
                            elinewidth=0.8, capsize=1.5)  # fmt: skip
        ax.set_xlabel(labels[xc])
        ax.set_ylabel(labels[yc])
    fam_styles = {f: s for f, (s, _) in fams.items()}
    _legend(fig, list(fams), fam_styles)
    return fig


def _families(summary: pd.DataFrame, styles) -> dict[str, tuple[PolicyStyle, pd.DataFrame]]:
    out: dict[str, tuple[PolicyStyle, pd.DataFrame]] = {}
    for pol in dict.fromkeys(summary["policy"]):
        fam = family(pol)
        rows = summary[summary["policy"] == pol]
        if fam in out:
            out[fam] = (out[fam][0], pd.concat([out[fam][1], rows]))
        else:
            out[fam] = (styles.get(fam, styles[pol]), rows)
    return out


# ----------------------------------------------------------------------------------------------
# 4: latency breakdown


def breakdown_bars(tables: list[tuple[str, pd.DataFrame]]) -> Figure:
    """Stacked horizontal bars of the mean latency components (ms) per policy, one panel per
    point; ``tables``: (title, policy x component means)."""
    n_pol = max(len(t) for _, t in tables)
    fig = new_figure(DOUBLE_IN, 0.7 + len(tables) * (0.5 + 0.22 * n_pol))
    axes = fig.subplots(len(tables), 1, squeeze=False, sharex=True)[:, 0]
    unit, div = _time_unit([t.sum(axis=1).max() for _, t in tables])
    for ax, (title, table) in zip(axes, tables):
        y = np.arange(len(table))[::-1]
        left = np.zeros(len(table))
        for col in table.columns:
            name, color = COMPONENTS[col]
            w = table[col].to_numpy() / div
            ax.barh(y, w, left=left, color=color, height=0.7, label=name, edgecolor="white",
                    linewidth=0.4)  # fmt: skip
            left += w
        ax.set_yticks(y, table.index.tolist())
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
    axes[-1].set_xlabel(f"Mean latency per image ({unit})")
    handles = [Patch(color=COMPONENTS[c][1], label=COMPONENTS[c][0]) for c in tables[0][1].columns]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig
