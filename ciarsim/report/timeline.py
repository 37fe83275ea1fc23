"""Timelines of single images: which lane (device, uplink, cloud queue, cloud, downlink) was busy
when, read from ``messages.parquet`` (one row per operation segment, times in ms since the run's
start). Used by the Gantt figure and by the Perfetto export.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ciarsim.report.style import DOUBLE_IN, LANE_COLORS, new_figure

LANE_ORDER = ("device", "uplink", "cloud_queue", "cloud", "downlink")
LANE_NAMES = {"device": "device", "uplink": "uplink", "cloud_queue": "cloud queue",
              "cloud": "cloud", "downlink": "downlink"}  # fmt: skip


def first_image(results: pd.DataFrame, point: str, policy: str, replication: int) -> pd.Series:
    """The results row of the lowest-numbered image of (point, policy, replication)."""
    at = results[(results["point"] == point) & (results["policy"] == policy)
                 & (results["replication"] == replication)]  # fmt: skip
    return at.sort_values(["image", "device"] if "device" in at else ["image"]).iloc[0]


def image_segments(messages: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """Segments of the image of results ``row``, times relative to its request (``start_ms``)."""
    m = messages
    mask = ((m["point"] == row["point"]) & (m["policy"] == row["policy"])
            & (m["replication"] == row["replication"]) & (m["image"] == row["image"]))  # fmt: skip
    if "device" in m and "device" in row:
        mask &= m["device"] == row["device"]
    seg = m[mask].copy()
    seg["start_ms"] -= float(row["start_ms"])
    seg["end_ms"] -= float(row["start_ms"])
    return seg


def sub_rows(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A row index per segment so that segments sharing a row never overlap in time (first fit in
    start order): overlapping work (several messages in flight) is drawn side by side."""
    order = np.argsort(starts, kind="stable")
    free_at: list[float] = []  # per row: when its last segment ends
    row = np.zeros(len(starts), dtype=int)
    for i in order:
        k = next((r for r, t in enumerate(free_at) if t <= starts[i] + 1e-9), len(free_at))
        if k == len(free_at):
            free_at.append(0.0)
        free_at[k] = float(ends[i])
        row[i] = k
    return row


def _draw_lanes(ax, seg: pd.DataFrame, div: float, min_w: float = 0.0) -> None:
    """One band per lane; a lane with overlapping segments is split into thinner sub-rows (so
    work in flight at the same time is never drawn on top of other work). Bars narrower than
    ``min_w`` (axis units) are drawn ``min_w`` wide so that short steps stay visible."""
    for k, lane in enumerate(LANE_ORDER):
        s = seg[seg["lane"] == lane]
        if s.empty:
            continue
        start, end = s["start_ms"].to_numpy(float), s["end_ms"].to_numpy(float)
        rows = sub_rows(start, end)
        n = int(rows.max()) + 1
        top = len(LANE_ORDER) - 1 - k + 0.4
        h = 0.8 / n
        for r in range(n):
            m = rows == r
            spans = list(zip(start[m] / div, np.maximum((end[m] - start[m]) / div, min_w)))
            ax.broken_barh(spans, (top - (r + 1) * h + 0.04 * h, 0.92 * h),
                           facecolors=LANE_COLORS[lane], edgecolor="none")
    ax.set_yticks(range(len(LANE_ORDER)), [LANE_NAMES[x] for x in LANE_ORDER][::-1])
    ax.set_ylim(-0.6, len(LANE_ORDER) - 0.4)
    ax.grid(axis="y", visible=False)


def timeline(rows: list[tuple[str, pd.DataFrame]], width_in: float = DOUBLE_IN,
             panel_in: float = 1.15) -> Figure:  # fmt: skip
    """A Gantt chart per policy of one image's segments; ``rows``: (title, segments with
    ``lane`` and ``start_ms`` / ``end_ms`` relative to the image's request). Lanes: device,
    uplink, cloud queue, cloud, downlink; where segments of a lane overlap (messages in flight
    while the device computes) the lane splits into sub-rows. ``width_in`` / ``panel_in``: the
    figure's width and each panel's height (inches; the paper variant is smaller). Bars shorter
    than 0.6 pt are drawn 0.6 pt wide."""
    end = max((float(seg["end_ms"].max()) if len(seg) else 0.0) for _, seg in rows)
    unit, div = ("s", 1000.0) if end > 2000.0 else ("ms", 1.0)
    fig = new_figure(width_in, 0.55 + panel_in * len(rows))
    axes = fig.subplots(len(rows), 1, squeeze=False, sharex=True)[:, 0]
    min_w = end / div * 0.6 / 72 / max(width_in - 1.0, 1.0)  # 0.6 pt at the axes' width
    for ax, (title, seg) in zip(axes, rows):
        _draw_lanes(ax, seg, div, min_w)
        ax.set_title(title, loc="left")
    axes[-1].set_xlim(0, end / div * 1.01 if end > 0 else 1)
    axes[-1].set_xlabel(f"Time since the image's request ({unit})")
    return fig
