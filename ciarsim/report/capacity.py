"""The capacity figure of ``ciarsim capacity``: per load kind, the SLO percentile of the probes
against the load (one per load: the full probe where there are two), one line per policy through
the probes that ran to the end, probes stopped early (a certain miss) as open triangles at their
lower bound, the SLO limit as a horizontal line and each policy's capacity marked. Reads ``capacity.csv`` and ``capacity_probes.csv`` (``ciarsim.runner.slo``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ciarsim.report.style import DOUBLE_IN, figure_style, new_figure, policy_styles, save_figure

_AXIS = {"poisson": "Poisson arrival rate (images/s)", "closed_loop": "closed-loop devices"}


def capacity_figure(table: pd.DataFrame, probes: pd.DataFrame, limit_ms: float, slo: str) -> Figure:
    """Rate (or devices) vs percentile latency per policy, first sweep point; SLO line; capacity
    marked with a cross."""
    point = table["point"].iloc[0]
    table, probes = table[table["point"] == point], probes[probes["point"] == point]
    kinds = [k for k in _AXIS if k in set(table["load"])]
    styles = policy_styles(list(dict.fromkeys(table["policy"])))
    fig = new_figure(DOUBLE_IN, 3.3)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for label, st in styles.items():
            pr = _one_per_load(probes[(probes["load"] == kind) & (probes["policy"] == label)])
            if pr.empty:
                continue
            ran = pr[~pr["stopped"]]
            ax.plot(ran["x"], ran["latency_ms"] / 1000, label=label, **st.line_kw())
            cut = pr[pr["stopped"]]  # stopped early: a lower bound, above the SLO
            ax.plot(cut["x"], cut["latency_ms"] / 1000, ls="none", marker="^", mfc="none",
                    color=st.color, ms=4)  # fmt: skip
            cap = table[(table["load"] == kind) & (table["policy"] == label)]["capacity"].iloc[0]
            if cap > 0:
                at = pr[pr["x"] == cap]["latency_ms"]
                if len(at):
                    ax.plot([cap], [at.iloc[0] / 1000], color=st.color, marker="x", ms=10, mew=2)
        ax.axhline(limit_ms / 1000, color="black", ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(_AXIS[kind])
        ax.set_ylabel(f"{slo.split('<=')[0]} latency (s)")
        ax.set_title(f"SLO {slo}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=6, ncol=7, loc="outside lower center", frameon=False)
    return fig


def _one_per_load(pr: pd.DataFrame) -> pd.DataFrame:
    """One probe per load, sorted by load: the one with the most images (a full probe over a
    short one); ``stopped`` False for tables written before probes could stop."""
    if "stopped" not in pr:
        pr = pr.assign(stopped=False)
    if "images" in pr:
        pr = pr.sort_values(["x", "images"], kind="stable").drop_duplicates("x", keep="last")
    return pr.sort_values("x", kind="stable")


def write_capacity_figure(out_dir: str | Path, limit_ms: float, slo: str) -> list[Path]:
    """Draw ``capacity.png``/``.pdf``/``.svg`` in ``out_dir`` from its two capacity tables."""
    out_dir = Path(out_dir)
    table = pd.read_csv(out_dir / "capacity.csv")
    probes = pd.read_csv(out_dir / "capacity_probes.csv")
    with figure_style():
        fig = capacity_figure(table, probes, limit_ms, slo)
    return save_figure(fig, out_dir / "capacity")
