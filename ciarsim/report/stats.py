"""The report's numbers: per (point, policy) statistics with 95% confidence intervals.

Method (also in docs/reports.md). Replications are the independent runs: each replays the same
decode trace in a fresh SimPy world with its own timing seed. A latency statistic (mean, p50,
p95, p99 over the images of a replication) is computed once per replication; the report gives the
mean of the R per-replication values and the half-width of a two-sided 95% Student-t interval on
them, t(0.975, R - 1) * s / sqrt(R). With one replication there is no interval (NaN: tables
show the value alone, figures draw no band).

Speed-up vs base at the same point is the ratio of mean latencies, base / policy (as in
summary.csv). Replication r of every policy uses the same timing seed, so replications pair up;
the interval is the ratio estimator's (delta method): d_r = B_r - S * P_r,
se = sd(d) / (sqrt(R) * mean(P)), half-width t(0.975, R - 1) * se.

Quality does not depend on timing (every replication replays one trace), so caption consistency
is the mean over the images with a t interval across images; FD is one number per image set.
Cloud passes (% of base) are the paper's "cloud calls": the policy's mean cloud forward passes
over base's at the same point.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats

LATENCY_STATS = {"mean": "latency_mean_ms", "p50": "latency_p50_ms", "p95": "latency_p95_ms",
                 "p99": "latency_p99_ms"}  # fmt: skip
CI = "_ci95"  # suffix of a column holding the half-width of the 95% interval of its stem


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (NaN if df < 1)."""
    if df < 1:
        return math.nan
    return float(scipy.stats.t.ppf(0.975, df))


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """(mean, half-width of the 95% t interval); the half-width is NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()) if len(x) else math.nan, math.nan
    return float(x.mean()), t975(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))


def ratio_ci(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Paired ratio of means mean(num) / mean(den) and its 95% half-width (delta method)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    ratio = float(num.mean() / den.mean())
    if len(num) < 2:
        return ratio, math.nan
    d = num - ratio * den
    se = float(d.std(ddof=1)) / (math.sqrt(len(d)) * float(den.mean()))
    return ratio, t975(len(d) - 1) * se


def per_replication(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (point, policy, replication): the latency statistics over its images (ms)."""
    g = results.groupby(["point", "policy", "replication"], sort=False)["latency_ms"]
    out = g.agg(latency_mean_ms="mean").reset_index()
    for q in (50, 95, 99):
        out[f"latency_p{q}_ms"] = g.agg(lambda s, q=q: float(np.percentile(s, q))).to_numpy()
    return out


def summary_table(results: pd.DataFrame, points: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (point, policy) in result order, with ``*_ci95`` half-widths (see module doc);
    the swept parameters of ``points`` come first when given."""
    reps = per_replication(results)
    rows = []
    for (point, policy), grp in results.groupby(["point", "policy"], sort=False):
        rep = reps[(reps["point"] == point) & (reps["policy"] == policy)]
        row = {"point": point, "point_index": int(grp["point_index"].iloc[0]), "policy": policy,
               "replications": len(rep), "images": int(len(grp) // max(len(rep), 1))}  # fmt: skip
        for col in LATENCY_STATS.values():
            row[col], row[col + CI] = mean_ci(rep[col].to_numpy())
        row.update(_speedup(reps, point, policy))
        row.update(_costs(results, grp, point))
        row.update(_quality(grp))
        rows.append(row)
    out = pd.DataFrame(rows)
    if points is not None:
        out = points.drop(columns=["point_index"]).merge(out, on="point", how="right")
    return out


def _speedup(reps: pd.DataFrame, point: str, policy: str) -> dict:
    at = reps[reps["point"] == point].set_index(["policy", "replication"])["latency_mean_ms"]
    if "base" not in at.index.get_level_values(0):
        return {"speedup_vs_base": math.nan, "speedup_vs_base" + CI: math.nan}
    base, pol = at.loc["base"], at.loc[policy]
    common = base.index.intersection(pol.index)
    s, half = ratio_ci(base.loc[common].to_numpy(), pol.loc[common].to_numpy())
    return {"speedup_vs_base": s, "speedup_vs_base" + CI: half}


def _costs(results: pd.DataFrame, grp: pd.DataFrame, point: str) -> dict:
    base = results[(results["point"] == point) & (results["policy"] == "base")]
    passes = grp["cloud_passes"].mean() if "cloud_passes" in grp else math.nan
    base_passes = base["cloud_passes"].mean() if "cloud_passes" in base and len(base) else math.nan
    return {"cloud_passes_mean": float(passes),
            "cloud_passes_pct": 100.0 * passes / base_passes if base_passes else math.nan,
            "cloud_calls_mean": float(grp["cloud_calls"].mean()),
            "bytes_up_mean": float(grp["bytes_up"].mean()),
            "bytes_down_mean": float(grp["bytes_down"].mean())}  # fmt: skip


def _quality(grp: pd.DataFrame) -> dict:
    out = {"caption_consistency": math.nan, "caption_consistency" + CI: math.nan,
           "fd": math.nan}  # fmt: skip
    first = grp[grp["replication"] == grp["replication"].min()]
    if "caption_consistency" in grp and first["caption_consistency"].notna().any():
        vals = first["caption_consistency"].dropna().to_numpy()
        out["caption_consistency"], out["caption_consistency" + CI] = mean_ci(vals)
    if "fd" in grp and grp["fd"].notna().any():
        out["fd"] = float(grp["fd"].dropna().iloc[0])
    return out


def breakdown(results: pd.DataFrame, point: str, components: list[str]) -> pd.DataFrame:
    """Mean of each latency component (ms) per policy at ``point`` (rows in result order)."""
    at = results[results["point"] == point]
    return at.groupby("policy", sort=False)[components].mean()


def slices(points: pd.DataFrame, x: str, max_panels: int = 4) -> tuple[list[dict], str]:
    """How to plot against swept parameter ``x``: the combinations of the other swept parameters
    that vary independently of ``x`` (one panel row each) and a note on what is held fixed.

    Parameters that move together with ``x`` (a zip group) are ignored. More than ``max_panels``
    combinations: only the first is drawn and the note says so.
    """
    others = [c for c in points.columns if c not in ("point", "point_index", x)
              and points.groupby(x, dropna=False)[c].nunique(dropna=False).max() > 1]  # fmt: skip
    if not others:
        return [{}], ""
    combos = points[others].drop_duplicates().to_dict("records")
    combos = [c for c in combos if _match(points, c)[x].nunique() >= 2] or combos[:1]
    if len(combos) <= max_panels:
        return combos, ""
    held = ", ".join(f"{k} = {_plain(v)}" for k, v in combos[0].items())
    return combos[:1], f"{len(combos)} combinations of the other swept parameters; shown: {held}"


def _match(points: pd.DataFrame, combo: dict) -> pd.DataFrame:
    mask = np.ones(len(points), dtype=bool)
    for k, v in combo.items():
        mask &= (points[k] == v).to_numpy() | (points[k].isna().to_numpy() & pd.isna(v))
    return points[mask]


def points_in(points: pd.DataFrame, combo: dict) -> list[str]:
    """Keys of the points whose swept values equal ``combo``."""
    return _match(points, combo)["point"].tolist()


def _plain(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
