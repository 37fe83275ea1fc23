"""Which figures a results folder supports, and why the others are skipped.

``plan_figures`` returns, in report order, a ``Planned`` figure (file stem, title, caption and a
zero-argument function that draws it) or a ``Skipped`` one (title and the reason) for each figure
of the report: latency against RTT / uplink / loss (and any other swept number), the speed-up
heat map, cost against quality, the latency breakdown, the timeline, token maps and load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
from matplotlib.figure import Figure

from ciarsim.report import figures as F
from ciarsim.report import plots
from ciarsim.report.load import Results, slug
from ciarsim.report import speedup
from ciarsim.report.speedup import break_even_text
from ciarsim.report.stats import points_in, slices
from ciarsim.report.style import PolicyStyle
from ciarsim.report.tokenmap import source_shares

RTT, UPLINK, LOSS = "network.rtt_ms", "network.uplink_mbps", "network.loss_rate"
LOAD = ("workload.arrival.rate_per_s", "workload.arrival.devices")
NETWORK_FIGURES = ((RTT, "latency_vs_rtt", "Latency vs RTT"),
                   (UPLINK, "latency_vs_uplink", "Latency vs uplink bandwidth"),
                   (LOSS, "latency_vs_loss", "Latency vs packet loss"))  # fmt: skip
MAX_BREAKDOWN_POINTS = 4
MAX_MAPS = 6


@dataclass(frozen=True)
class Planned:
    name: str
    title: str
    caption: str
    draw: Callable[[], Figure]


@dataclass(frozen=True)
class Skipped:
    title: str
    reason: str


Entry = Planned | Skipped


def plan_figures(res: Results, summary: pd.DataFrame, styles: dict[str, PolicyStyle]) -> list[Entry]:
    """Every figure of the report, planned or skipped, in report order."""
    out: list[Entry] = []
    for path, name, title in NETWORK_FIGURES:
        out.append(_latency_vs(res, summary, styles, path, name, title, ("mean", "p95")))
    for path in _other_numeric(res):
        out.append(_latency_vs(res, summary, styles, path, f"latency_vs_{_stem(path)}",
                               f"Latency vs {F.param_axis(path)[0]}", ("mean", "p95")))  # fmt: skip
    out.extend(_speedups_vs(res, summary))
    out.append(_speedup_map(res, summary))
    out.append(_quality(res, summary, styles))
    out.append(_breakdown(res))
    out.extend(_timelines(res))
    out.extend(_token_maps(res))
    out.append(_load(res, summary, styles))
    return out


def swept_numbers(res: Results, path: str) -> bool:
    """Whether ``path`` was swept over at least two numeric values."""
    if path not in res.swept:
        return False
    col = res.points[path]
    return pd.api.types.is_numeric_dtype(col) and col.nunique() >= 2


def _why_not(res: Results, path: str) -> str:
    if path not in res.swept:
        swept = ", ".join(res.swept) or "nothing"
        return f"`{path}` was not swept (swept: {swept})"
    return f"`{path}` was swept over fewer than two numeric values"


def _other_numeric(res: Results) -> list[str]:
    known = {RTT, UPLINK, LOSS, *LOAD}
    return [p for p in res.swept if p not in known and not p.startswith("policies.")
            and swept_numbers(res, p)]  # fmt: skip


def _stem(path: str) -> str:
    return slug(path.replace(".", "_"))


def _reps_note(res: Results) -> str:
    r = int(res.results["replication"].nunique())
    if r < 2:
        return "One replication: no confidence bands."
    return (f"Bands: 95% confidence intervals (Student t across {r} replications of each "
            "point's per-replication statistic).")  # fmt: skip


def _latency_vs(res, summary, styles, path, name, title, stats) -> Entry:
    if not swept_numbers(res, path):
        return Skipped(title, _why_not(res, path))
    _, note = slices(res.points, path)
    what = " and ".join(F.STAT_TITLES[s] for s in stats)
    caption = (f"{what.capitalize()} per image against {F.param_axis(path)[0]}, one line per "
               f"policy. {_reps_note(res)}")  # fmt: skip
    if note:
        caption += f" {note}."
    return Planned(name, title, caption,
                   lambda: plots.latency_vs(res, path, stats, summary=summary))  # fmt: skip


def _speedups_vs(res: Results, summary: pd.DataFrame) -> list[Entry]:
    """Speed-up vs base against each numeric swept parameter (not thresholds), break-even marked."""
    paths = [p for p in (RTT, UPLINK, LOSS, *LOAD) if swept_numbers(res, p)] + _other_numeric(res)
    if not paths:
        return [Skipped("Speed-up vs base against a swept value",
                        "no numeric network, load or hardware parameter was swept")]  # fmt: skip
    if "base" not in res.policies or len(res.policies) < 2:
        return [Skipped("Speed-up vs base against a swept value", "needs policy `base` and another")]
    out: list[Entry] = []
    for path in paths:
        combos, note = slices(res.points, path)
        texts = [break_even_text(summary, path, points_in(res.points, c)) for c in combos]
        where = [f"{F.combo_text(c)}: {t}" if F.combo_text(c) else t
                 for c, t in zip(combos, texts) if t]  # fmt: skip
        caption = (f"Speed-up vs base (mean latency of base / of the policy at the same point; "
                   f"above 1: faster than base) against {F.param_axis(path)[0]}, one line per "
                   "policy, log scale. Open circles on the 1× line mark break-even, interpolated "
                   f"linearly between swept values. {_reps_note(res)} {' '.join(where)}"
                   + (f" {note}." if note else ""))  # fmt: skip
        stem = {RTT: "rtt", UPLINK: "uplink", LOSS: "loss"}.get(path, _stem(path))
        out.append(Planned(f"speedup_vs_{stem}",
                           f"Speed-up vs base against {F.param_axis(path)[0]}", caption.strip(),
                           lambda p=path: plots.speedup_vs(res, p, summary=summary)))  # fmt: skip
    return out


def _first_other_combo(res: Results, exclude: set[str]) -> tuple[list[str], str]:
    """Points at the first combination of the swept parameters not in ``exclude``, and a note."""
    others = [c for c in res.swept if c not in exclude]
    if not others:
        return res.points["point"].tolist(), ""
    combos = res.points[others].drop_duplicates().to_dict("records")
    note = "" if len(combos) == 1 else f" Other swept parameters held at {F.combo_text(combos[0])}."
    return points_in(res.points, combos[0]), note


def _speedup_map(res: Results, summary: pd.DataFrame) -> Entry:
    title = "Speed-up vs base over RTT and uplink bandwidth"
    missing = [p for p in (RTT, UPLINK) if not swept_numbers(res, p)]
    if missing:
        return Skipped(title, "needs both `network.rtt_ms` and `network.uplink_mbps` swept; "
                       + "; ".join(_why_not(res, p) for p in missing))  # fmt: skip
    if "base" not in res.policies:
        return Skipped(title, "needs policy `base` (the reference of speed-ups)")
    others = [p for p in res.policies if p != "base"]
    if not others:
        return Skipped(title, "no policy other than `base`")
    others = sorted(others, key=lambda p: p != "ciar")[:MAX_MAPS]
    _, note = _first_other_combo(res, {RTT, UPLINK})
    grids = plots.speedup_grids(res, summary, others)
    caption = ("Speed-up vs base (mean latency of base / of the policy at the same point), "
               "blue: faster than base, red: slower; the black contour is break-even (1×), "
               "interpolated linearly between the swept grid points."
               + note)  # fmt: skip
    never = speedup.break_even_note(grids)
    if never:
        caption += f" No break-even inside the swept range: {never}."
    if len(others) < len(res.policies) - 1:
        caption += f" First {MAX_MAPS} policies shown."
    return Planned("speedup_map", title, caption,
                   lambda: plots.speedup_map(res, others, summary=summary))  # fmt: skip


def _quality(res: Results, summary: pd.DataFrame, styles) -> Entry:
    swept_tau = [p for p in res.swept if p.startswith("policies.")]
    title = "Threshold sweep: cloud calls vs quality" if swept_tau else "Cloud calls vs quality"
    if summary["caption_consistency"].isna().all():
        return Skipped(title, "quality was not measured (no `caption_consistency` in "
                              "results.parquet)")  # fmt: skip
    if "base" not in res.policies:
        return Skipped(title, "needs policy `base` (cloud passes are a percentage of base's)")
    keys, note = _first_other_combo(res, set(swept_tau))
    how = (f"one line per policy family across the threshold sweep ({', '.join(swept_tau)})"
           if swept_tau else "one marker per policy (no threshold was swept)")  # fmt: skip
    caption = ("Cloud forward passes (% of base, the paper's \"cloud calls\") against caption "
               "consistency (higher is better) and FD (lower is better), and mean latency against "
               f"caption consistency; {how}; each policy labelled at its point (at the end of its "
               f"line). Error bars: 95% t interval across images.{note}")  # fmt: skip
    return Planned("quality_vs_cost", title, caption,
                   lambda: plots.quality_vs_cost(res, summary=summary, points=keys))  # fmt: skip


def point_text(res: Results, key: str) -> str:
    """The scenario and conditions at point ``key`` (``4g: RTT 20 ms, uplink 2 Mbit/s, ...``)."""
    return plots.conditions(res, key)


def _breakdown(res: Results) -> Entry:
    keys = res.points["point"].tolist()
    shown = keys if len(keys) <= MAX_BREAKDOWN_POINTS else keys[:1]
    caption = ("Mean time per image in each part of its life: device compute, uplink and "
               "downlink (queueing + serialisation + loss recovery), RTT wait (propagation), "
               "cloud queue and cloud compute. The parts sum to the latency for stop-and-wait "
               "protocols; with overlap (device work during a request, several requests in "
               "flight) each is its own busy time and they can sum to more.")  # fmt: skip
    if len(shown) < len(keys):
        caption += f" First of {len(keys)} points shown ({point_text(res, keys[0])})."
    return Planned("latency_breakdown", "Latency breakdown", caption,
                   lambda: plots.latency_breakdown(res))  # fmt: skip


def _timelines(res: Results) -> list[Entry]:
    title = "Timeline of one image per policy"
    if res.messages is None:
        return [Skipped(title, "no `messages.parquet` in the results folder")]
    key = res.points["point"].iloc[0]
    rep = int(res.results["replication"].min())
    how = ("uplink/downlink bars span send to arrival, propagation included; where a lane's work "
           "overlaps (messages in flight while the device computes) the lane splits into rows; "
           "a cloud queue bar appears only where the image waited for a batch")  # fmt: skip
    caption = (f"Busy lanes of the first image of each policy at {point_text(res, key)}, "
               f"replication {rep} ({how}).")  # fmt: skip
    paper = [p for p in plots.PAPER_POLICIES if p in res.policies] or res.policies[:3]
    return [Planned("timeline", title, caption, lambda: plots.timeline(res)),
            Planned("timeline_paper", f"Timeline, one column: {', '.join(paper)}",
                    f"The timeline of {', '.join(paper)} alone, sized for one column of a paper "
                    f"(3.3 in). {point_text(res, key)}, replication {rep}.",
                    lambda: plots.timeline(res, paper, paper=True))]  # fmt: skip


def _token_maps(res: Results) -> list[Entry]:
    out: list[Entry] = []
    missing = []
    for pol in res.policies:
        arrays = res.samples.get(slug(pol))
        if arrays is None:
            missing.append(pol)
            continue
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in source_shares(arrays).items())
        tau = plots.policy_tau(res, pol)
        caption = (f"Token map of `{pol}`: decoded samples (when stored), where each token came "
                   f"from and the device's uncertainty U (grey: none)"
                   + (f"; the policy's threshold τ = {tau:.3g} is marked on the U colour bar"
                      if tau is not None else "")
                   + f". Token shares over the samples: {shares}.")  # fmt: skip
        out.append(Planned(f"tokens_{slug(pol)}", f"Token map: {pol}", caption,
                           lambda p=pol: plots.token_map(res, p)))  # fmt: skip
    if missing:
        out.append(Skipped(f"Token maps: {', '.join(missing)}",
                           "no `samples/<policy>.npz` for these policies"))  # fmt: skip
    return out


def _load(res: Results, summary: pd.DataFrame, styles) -> Entry:
    title = "Load: p95 latency vs offered load"
    path = next((p for p in LOAD if swept_numbers(res, p)), None)
    if path is None:
        return Skipped(title, " and ".join(f"`{p}`" for p in LOAD) + " were not swept")
    return _latency_vs(res, summary, styles, path, "load_p95", title, ("p95",))
