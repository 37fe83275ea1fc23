"""Report figures, one function each. They draw tables made by ``ciarsim.report.stats`` and return
a matplotlib ``Figure``; they compute nothing a reader would need to check elsewhere.

Call them inside ``style.figure_style()`` so fonts and sizes are the report's (the functions of
``ciarsim.report.plots`` do, from a results folder). The speed-up figures are in
``ciarsim.report.speedup``, cost against quality in ``ciarsim.report.quality``.
"""

from __future__ import annotations

import math
import textwrap
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ciarsim.report.labels import (  # noqa: F401  (re-exported: other modules use F.<name>)
    PARAMS, combo_text, num as _num, param_axis, param_text, time_unit as _time_unit, use_log,
    x_axis,
)  # fmt: skip
from ciarsim.report.stats import CI, LATENCY_STATS
from ciarsim.report.style import COLUMN_IN, COMPONENTS, DOUBLE_IN, PolicyStyle, new_figure

STAT_TITLES = {"mean": "mean latency", "p50": "median latency", "p95": "p95 latency",
               "p99": "p99 latency"}  # fmt: skip


def legend(fig: Figure, labels: Sequence[str], styles: dict[str, PolicyStyle],
           extra: Sequence[Line2D] = ()) -> None:  # fmt: skip
    """One legend below the figure: a line and marker per policy, then ``extra`` handles."""
    handles = [Line2D([], [], label=lab, **styles[lab].line_kw()) for lab in labels]
    handles += list(extra)
    ncols = min(len(handles), 3 if fig.get_figwidth() < 4 else 5)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, handlelength=2.6,
               columnspacing=1.2)  # fmt: skip


_legend = legend


def facet_rows(fig: Figure, titles: Sequence[str], ncols: int, width_in: float) -> list:
    """Rows of ``ncols`` axes, one per facet; a facet's title (the held values, e.g. ``device
    apple-m4``) is written once above its row, wrapped to the figure's width. Returns the axes
    rows (lists)."""
    if len(titles) == 1 and not titles[0]:
        return [list(fig.subplots(1, ncols, squeeze=False)[0])]
    subs = fig.subfigures(len(titles), 1, squeeze=False)[:, 0] if len(titles) > 1 else [fig]
    rows = []
    for sub, title in zip(subs, titles):
        chars = int(width_in * 16)  # ~16 characters of 8 pt text per inch
        sub.suptitle("\n".join(textwrap.wrap(title, chars)), fontsize=8, fontweight="bold")
        rows.append(list(sub.subplots(1, ncols, squeeze=False)[0]))
    return rows


# ----------------------------------------------------------------------------------------------
# 1 and 7: latency against a swept parameter


def latency_vs(summary: pd.DataFrame, x: str, panels: list[tuple[str, list[str]]],
               styles: dict[str, PolicyStyle], stats: Sequence[str] = ("mean", "p95"),
               log_x: bool | None = None) -> Figure:  # fmt: skip
    """One line per policy of each latency statistic against ``x``, with 95% CI bands.

    ``panels``: (facet title, point keys) per row of panels, e.g. one row per device.
    """
    label, factor = param_axis(x)
    cols = [LATENCY_STATS[s] for s in stats]
    unit, div = _time_unit(summary[cols].to_numpy().ravel().tolist())
    xs = summary[x].astype(float) * factor
    if log_x is None:
        log_x = use_log(x, xs)
    width = DOUBLE_IN if len(stats) > 1 else COLUMN_IN
    policies = list(dict.fromkeys(summary["policy"]))
    fig = new_figure(width, 0.5 + 2.1 * len(panels) + 0.2 * math.ceil(len(policies) / 5))
    rows = facet_rows(fig, [t for t, _ in panels], len(stats), width)
    for r, ((_, keys), axes) in enumerate(zip(panels, rows)):
        at = summary[summary["point"].isin(keys)]
        for ax, stat, col in zip(axes, stats, cols):
            for pol in policies:
                d = at[at["policy"] == pol].sort_values(x)
                xv = d[x].astype(float).to_numpy() * factor
                y, half = d[col].to_numpy() / div, d[col + CI].to_numpy() / div
                ax.plot(xv, y, **styles[pol].line_kw())
                if np.isfinite(half).any():
                    ax.fill_between(xv, y - half, y + half, color=styles[pol].color, alpha=0.18,
                                    linewidth=0)  # fmt: skip
            ax.set_title(STAT_TITLES[stat].capitalize())
            ax.set_ylabel(f"{STAT_TITLES[stat].capitalize()} ({unit})")
            ax.set_xlabel(label)
            x_axis(ax, xs, log_x)
    legend(fig, policies, styles)
    return fig


def overlay(sides: list[tuple[str, pd.DataFrame]], x: str, styles: dict[str, PolicyStyle],
            stats: Sequence[str] = ("mean", "p95"),
            facets: Sequence[tuple[str, list[list[str]]]] = (), note: str = "") -> Figure:  # fmt: skip
    """Two result sets against ``x``: the first solid with filled markers, the second dashed with
    open markers; one colour and marker per policy, 95% CI bands. ``facets``: (title, point keys
    of each side) per row of panels; empty: every point of each side in one row. ``note``: a line
    under the panels (e.g. which combinations are not shown)."""
    label, factor = param_axis(x)
    cols = [LATENCY_STATS[s] for s in stats]
    allv = pd.concat([d for _, d in sides])
    unit, div = _time_unit(allv[cols].to_numpy().ravel().tolist())
    xs = allv[x].astype(float) * factor
    log_x = use_log(x, xs)
    policies = list(dict.fromkeys(allv["policy"]))
    facets = list(facets) or [("", [d["point"].tolist() for _, d in sides])]
    fig = new_figure(DOUBLE_IN, 0.5 + 2.2 * len(facets)
                     + 0.2 * math.ceil((len(policies) + 2) / 5))  # fmt: skip
    rows = facet_rows(fig, [t for t, _ in facets], len(stats), DOUBLE_IN)
    dash = ("-", "--")
    for (_, keys), axes in zip(facets, rows):
        for ax, stat, col in zip(axes, stats, cols):
            for k, (_, d) in enumerate(sides):
                d = d[d["point"].isin(keys[k])]
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
                        ax.fill_between(xv, y - half, y + half, color=styles[pol].color,
                                        alpha=0.12, linewidth=0)  # fmt: skip
            ax.set_title(STAT_TITLES[stat].capitalize())
            ax.set_xlabel(label)
            ax.set_ylabel(f"{STAT_TITLES[stat].capitalize()} ({unit})")
            x_axis(ax, xs, log_x)
    plain = {p: PolicyStyle(styles[p].color, styles[p].marker, "-", styles[p].markersize)
             for p in policies}  # fmt: skip
    extra = [Line2D([], [], color="#444444", linestyle=dash[k % 2], marker="o",
                    markerfacecolor="white" if k % 2 else "#444444", label=name)
             for k, (name, _) in enumerate(sides)]  # fmt: skip
    legend(fig, policies, plain, extra)
    if note:
        fig.suptitle("\n".join(textwrap.wrap(note, 120)), fontsize=7, color="#444444")
    return fig


# ----------------------------------------------------------------------------------------------
# 4: latency breakdown


def breakdown_bars(tables: list[tuple[str, pd.DataFrame]], title: str = "") -> Figure:
    """Stacked horizontal bars of the mean latency components (ms) per policy, one panel per
    point; ``tables``: (panel title, policy x component means); ``title``: the scenario and its
    conditions, above everything."""
    n_pol = max(len(t) for _, t in tables)
    fig = new_figure(DOUBLE_IN, 0.9 + len(tables) * (0.5 + 0.22 * n_pol) + 0.25 * bool(title))
    axes = fig.subplots(len(tables), 1, squeeze=False, sharex=True)[:, 0]
    unit, div = _time_unit([t.sum(axis=1).max() for _, t in tables])
    for ax, (panel, table) in zip(axes, tables):
        y = np.arange(len(table))[::-1]
        left = np.zeros(len(table))
        for col in table.columns:
            name, color = COMPONENTS[col]
            w = table[col].to_numpy() / div
            ax.barh(y, w, left=left, color=color, height=0.7, label=name, edgecolor="white",
                    linewidth=0.4)  # fmt: skip
            left += w
        ax.set_yticks(y, table.index.tolist())
        if panel:
            ax.set_title(panel)
        ax.grid(axis="y", visible=False)
    axes[-1].set_xlabel(f"Mean time per image in each part ({unit})")
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8)
    handles = [Patch(color=COMPONENTS[c][1], label=COMPONENTS[c][0]) for c in tables[0][1].columns]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig
