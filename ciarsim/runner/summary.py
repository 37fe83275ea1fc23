"""The summary table of a run: latency statistics, speed-up vs Base, cloud calls vs SD.

Reads the per-image results table (one row per image per point per replication) and reduces it
per (point, policy). Speed-up and call reduction compare policies at the same sweep point:
``speedup_vs_base = mean latency of base / mean latency of the policy``;
``cloud_calls_reduction_vs_sd = 1 - mean calls of the policy / mean calls of sd``. Quality comes
from the decision layer. Two notions of "cloud calls": ``cloud_calls_mean`` counts network round
trips; ``cloud_calls_pct`` is the paper's metric, the cloud's sequential forward passes as a
percentage of base's (cloud-only decoding = 100%). Energy and cost (``ciarsim.sim.energy``): means per image of ``cloud_gpu_s`` and the three
energies (J), and ``usd_per_1k_images`` = 1000 x the mean ``cloud_usd`` (the cloud's price of the
images' GPU shares). Quality comes from the decision layer: mean caption consistency of the images and the FD of the policy's image
set against the real held-out images of the same prompts. Where the
reference policy is not in the scenario the column is empty (NaN), never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMMARY_COLUMNS = [
    "point",
    "policy",
    "images",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "speedup_vs_base",
    "cloud_calls_mean",
    "cloud_calls_reduction_vs_sd",
    "cloud_passes_mean",
    "cloud_calls_pct",
    "bytes_up_mean",
    "bytes_down_mean",
    "caption_consistency",
    "fd",
    "cloud_gpu_s_mean",
    "usd_per_1k_images",
    "energy_device_j_mean",
    "energy_radio_j_mean",
    "energy_cloud_j_mean",
]
# per-image energy/cost columns (ciarsim.sim.energy) -> their mean in the summary
_MEANS = {"cloud_gpu_s": "cloud_gpu_s_mean", "energy_device_j": "energy_device_j_mean",
          "energy_radio_j": "energy_radio_j_mean", "energy_cloud_j": "energy_cloud_j_mean"}


def summarize(images: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, policy), in the order they appear in ``images``; with a ``group``
    column (a mixed population), a ``group`` column too: each (point, policy)'s row for the
    whole population (group ``all``) followed by one row per group (ratios to base and sd are
    taken within the same group)."""
    if "group" not in images.columns:
        return _summarize(images, ["point", "policy"])
    everyone = _summarize(images, ["point", "policy"]).assign(group="all")
    groups = _summarize(images, ["point", "policy", "group"])
    out = pd.concat([everyone, groups], ignore_index=True)
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(images["point"], images["policy"])))}
    names = ["all", *dict.fromkeys(images["group"])]
    out["_o"] = [order[k] for k in zip(out["point"], out["policy"])]
    out["_g"] = out["group"].map({g: i for i, g in enumerate(names)})
    out = out.sort_values(["_o", "_g"], kind="stable").drop(columns=["_o", "_g"])
    cols = ["point", "policy", "group", *SUMMARY_COLUMNS[2:]]
    return out[cols].reset_index(drop=True)


def _summarize(images: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` group (``SUMMARY_COLUMNS`` plus any key beyond point and policy)."""
    grouped = images.groupby(keys, sort=False)
    out = grouped.agg(
        images=("latency_ms", "size"),
        latency_mean_ms=("latency_ms", "mean"),
        latency_p50_ms=("latency_ms", lambda s: float(np.percentile(s, 50))),
        latency_p95_ms=("latency_ms", lambda s: float(np.percentile(s, 95))),
        cloud_calls_mean=("cloud_calls", "mean"),
        cloud_passes_mean=("cloud_passes", "mean"),
        bytes_up_mean=("bytes_up", "mean"),
        bytes_down_mean=("bytes_down", "mean"),
    ).reset_index()
    for col, how in (("caption_consistency", "mean"), ("fd", "first")):
        out[col] = grouped[col].agg(how).to_numpy() if col in images else np.nan
    for col, name in _MEANS.items():  # NaN for results written before these columns existed
        out[name] = grouped[col].mean().to_numpy() if col in images else np.nan
    out["usd_per_1k_images"] = (
        1000.0 * grouped["cloud_usd"].mean().to_numpy() if "cloud_usd" in images else np.nan
    )
    out["speedup_vs_base"] = _ratio_to(out, "base", "latency_mean_ms", invert=True)
    out["cloud_calls_reduction_vs_sd"] = 1.0 - _ratio_to(out, "sd", "cloud_calls_mean")
    out["cloud_calls_pct"] = 100.0 * _ratio_to(out, "base", "cloud_passes_mean")
    return out[SUMMARY_COLUMNS + keys[2:]]


def _ratio_to(df: pd.DataFrame, ref: str, column: str, invert: bool = False) -> pd.Series:
    """``df[column] / ref's value at the same point`` (and group, if any) (or its inverse); NaN
    where ref is absent."""
    on = ["point", "group"] if "group" in df.columns else ["point"]
    ref_values = df[df["policy"] == ref].set_index(on)[column]
    at = pd.MultiIndex.from_frame(df[on]) if len(on) > 1 else df["point"]
    ref_at_row = pd.Series(ref_values.reindex(at).to_numpy(), index=df.index).astype(float)
    if invert:
        return ref_at_row / df[column]
    return df[column] / ref_at_row


def to_markdown(summary: pd.DataFrame, params: pd.DataFrame | None = None) -> str:
    """A GitHub-flavoured Markdown table of the summary, with the swept parameters if any."""
    table = summary if params is None else params.merge(summary, on="point", how="right")
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)
