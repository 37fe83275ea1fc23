"""Timelines of single images: which lane (device, uplink, cloud queue, cloud, downlink) was busy
when, read from ``messages.parquet`` (one row per operation segment, times in ms since the run's
start). Used by the Gantt figure and by the Perfetto export.
"""

from __future__ import annotations

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


def timeline(rows: list[tuple[str, pd.DataFrame]]) -> Figure:
    """A Gantt chart per policy of one image's segments; ``rows``: (title, segments with
    ``lane`` and ``start_ms`` / ``end_ms`` relative to the image's request)."""
    end = max((float(seg["end_ms"].max()) if len(seg) else 0.0) for _, seg in rows)
    unit, div = ("s", 1000.0) if end > 2000.0 else ("ms", 1.0)
    fig = new_figure(DOUBLE_IN, 0.6 + 1.15 * len(rows))
    axes = fig.subplots(len(rows), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, seg) in zip(axes, rows):
        for k, lane in enumerate(LANE_ORDER):
            s = seg[seg["lane"] == lane]
            spans = list(zip(s["start_ms"] / div, (s["end_ms"] - s["start_ms"]) / div))
            if spans:
                ax.broken_barh(spans, (len(LANE_ORDER) - 1 - k - 0.38, 0.76),
                               facecolors=LANE_COLORS[lane], edgecolor="none")  # fmt: skip
        ax.set_yticks(range(len(LANE_ORDER)), [LANE_NAMES[x] for x in LANE_ORDER][::-1])
        ax.set_ylim(-0.6, len(LANE_ORDER) - 0.4)
        ax.set_title(title, loc="left")
        ax.grid(axis="y", visible=False)
    axes[-1].set_xlim(0, end / div * 1.01 if end > 0 else 1)
    axes[-1].set_xlabel(f"Time since the image's request ({unit})")
    return fig
