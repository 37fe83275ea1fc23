"""Every report figure as a function of a results folder: each takes a ``Results`` (from
``ciarsim.load`` / ``ciarsim.run`` / ``ciarsim.report.load.load_results``) and returns a
matplotlib ``Figure`` drawn in the report's style, ready for further styling or
``fig.savefig(...)``. The report (``ciarsim run`` / ``ciarsim report``) draws its figures through
these same functions.

    import ciarsim
    res = ciarsim.load("reports/4g")
    fig = ciarsim.plots.speedup_vs(res, "network.rtt_ms")
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from ciarsim.errors import CiarsimError
from ciarsim.report import figures as F
from ciarsim.report import quality, speedup, timeline as TL
from ciarsim.report.load import Results, slug
from ciarsim.report.stats import breakdown, points_in, slices, summary_table
from ciarsim.report.style import COLUMN_IN, COMPONENTS, figure_style, policy_styles
from ciarsim.report.tokenmap import token_map as _token_map
from ciarsim.scenario.loader import raw_scenario

RTT, UPLINK = "network.rtt_ms", "network.uplink_mbps"
PAPER_POLICIES = ("base", "sd", "ciar")  # the paper-sized timeline's default choice
CONDITIONS = ("network.uplink_mbps", "network.downlink_mbps", "network.rtt_ms", "network.jitter_ms",
              "network.loss_rate", "models.device.hardware", "models.device.runtime",
              "models.cloud.hardware")  # fmt: skip
MAX_FACETS = 4


def summary_of(res: Results, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The report's summary (``summary_ci.csv``'s table) of ``res``, unless given."""
    return summary if summary is not None else summary_table(res.results, res.points)


def facets(res: Results, x: str, max_panels: int = MAX_FACETS) -> tuple[list[tuple[str, list[str]]], str]:
    """(facet title, point keys) per row of panels against ``x``, and a note on what was left out."""
    combos, note = slices(res.points, x, max_panels)
    return [(F.combo_text(c), points_in(res.points, c)) for c in combos], note


def _check_swept(res: Results, x: str) -> None:
    if x not in res.swept:
        raise CiarsimError(f"{res.root}: `{x}` was not swept (swept: {', '.join(res.swept) or 'nothing'})")


def _check_policies(have: Sequence[str], policies: Sequence[str]) -> None:
    missing = [p for p in policies if p not in set(have)]
    if missing:
        raise CiarsimError(f"no policy {', '.join(missing)} in these results (have: "
                           f"{', '.join(dict.fromkeys(have))})")  # fmt: skip


def _only(summary: pd.DataFrame, policies: Sequence[str] | None) -> pd.DataFrame:
    if policies is None:
        return summary
    _check_policies(list(summary["policy"]), policies)
    return summary[summary["policy"].isin(policies)]


def latency_vs(res: Results, x: str = RTT, stats: Sequence[str] = ("mean", "p95"),
               policies: Sequence[str] | None = None,
               summary: pd.DataFrame | None = None) -> Figure:  # fmt: skip
    """Latency statistics against swept ``x``, one line per policy, one row per facet."""
    _check_swept(res, x)
    s = _only(summary_of(res, summary), policies)
    with figure_style():
        return F.latency_vs(s, x, facets(res, x)[0], policy_styles(res.policies), stats)


def speedup_vs(res: Results, x: str = RTT, policies: Sequence[str] | None = None,
               summary: pd.DataFrame | None = None) -> Figure:  # fmt: skip
    """Speed-up vs base against swept ``x`` with break-even crossings marked."""
    _check_swept(res, x)
    if "base" not in res.policies:
        raise CiarsimError(f"{res.root}: speed-ups need policy `base` (the reference)")
    s = _only(summary_of(res, summary), policies)
    with figure_style():
        return speedup.speedup_vs(s, x, facets(res, x)[0], policy_styles(res.policies))


def speedup_grids(res: Results, summary: pd.DataFrame, policies: Sequence[str]) -> list:
    """(policy, uplink x RTT grid of speed-ups) at the first combination of other swept values."""
    others = [c for c in res.swept if c not in (RTT, UPLINK)]
    keys = res.points["point"].tolist()
    if others:
        keys = points_in(res.points, res.points[others].drop_duplicates().to_dict("records")[0])
    at = summary[summary["point"].isin(keys)]
    return [(p, at[at["policy"] == p].pivot_table(index=UPLINK, columns=RTT,
                                                  values="speedup_vs_base", dropna=False))
            for p in policies]  # fmt: skip


def speedup_map(res: Results, policies: Sequence[str] | None = None,
                summary: pd.DataFrame | None = None) -> Figure:  # fmt: skip
    """Heat maps of speed-up vs base over RTT x uplink bandwidth, one per policy."""
    for x in (RTT, UPLINK):
        _check_swept(res, x)
    pols = list(policies or sorted((p for p in res.policies if p != "base"), key=lambda p: p != "ciar"))
    with figure_style():
        return speedup.speedup_map(speedup_grids(res, summary_of(res, summary), pols), RTT, UPLINK)


def quality_vs_cost(res: Results, policies: Sequence[str] | None = None,
                    summary: pd.DataFrame | None = None, points: Sequence[str] | None = None) -> Figure:  # fmt: skip
    """Cloud passes and latency against caption consistency and FD, every policy labelled."""
    s = _only(summary_of(res, summary), policies)
    if points is not None:
        s = s[s["point"].isin(points)]
    with figure_style():
        return quality.quality_vs_cost(s, policy_styles(res.policies))


def scenario_dict(res: Results) -> dict:
    return raw_scenario(res.scenario_text) or {}


def _at(data: dict, path: str) -> object:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def conditions(res: Results, key: str | None = None) -> str:
    """The scenario's name and the conditions at point ``key`` (None: the fixed ones only): swept
    values first, then the fixed network and hardware (``4g: RTT 70 ms, uplink 11.2 Mbit/s, ...,
    device snapdragon-8-gen-3 (npu), cloud h100 (cudagraph)``)."""
    row = res.points[res.points["point"] == key] if key is not None else res.points.iloc[:0]
    swept = {p: row.iloc[0][p] for p in res.swept} if len(row) else {}
    data = scenario_dict(res)
    net = {p: _at(data, p) for p in CONDITIONS if p.startswith("network.") and p not in res.swept}
    net = {p: v for p, v in net.items() if v is not None and not (p.endswith("loss_rate") and not v)}
    parts = [F.combo_text(swept)] if swept else []
    parts += [F.combo_text(net)] if net else []
    for role in ("device", "cloud"):
        hw, rt = f"models.{role}.hardware", f"models.{role}.runtime"
        if hw in res.swept or rt in res.swept:
            continue
        if _at(data, hw) is not None:
            parts.append(f"{role} {_at(data, hw)}" + (f" ({_at(data, rt)})" if _at(data, rt) else ""))
    return f"{res.name}: " + ", ".join(parts)


def latency_breakdown(res: Results, points: Sequence[str] | None = None) -> Figure:
    """Stacked bars of the mean latency parts per policy, one panel per point (default: every
    point if there are at most four, else the first), titled with the scenario and conditions."""
    keys = list(points) if points is not None else res.points["point"].tolist()
    keys = keys if len(keys) <= MAX_FACETS else keys[:1]
    cols = [c for c in COMPONENTS if c in res.results]
    if len(keys) == 1:
        tables, title = [("", breakdown(res.results, keys[0], cols))], conditions(res, keys[0])
    else:
        at = res.points.set_index("point")
        tables = [(F.combo_text({p: at.loc[k, p] for p in res.swept}),
                   breakdown(res.results, k, cols)) for k in keys]  # fmt: skip
        title = conditions(res)
    with figure_style():
        return F.breakdown_bars(tables, title)


def timeline_rows(res: Results, policies: Sequence[str], point: str, replication: int) -> list:
    rows = []
    for pol in policies:
        row = TL.first_image(res.results, point, pol, replication)
        lat = float(row["latency_ms"])
        took = f"{lat / 1000:.2f} s" if lat > 2000 else f"{lat:.1f} ms"
        rows.append((f"{pol}: image {int(row['image'])}, latency {took}",
                     TL.image_segments(res.messages, row)))  # fmt: skip
    return rows


def timeline(res: Results, policies: Sequence[str] | None = None, point: str | None = None,
             replication: int | None = None, paper: bool = False) -> Figure:  # fmt: skip
    """Busy lanes (device, uplink, cloud queue, cloud, downlink) of the first image of each
    policy. ``paper``: a one-column figure of a few policies (default base, sd, ciar)."""
    if res.messages is None:
        raise CiarsimError(f"{res.root}: no messages.parquet (timelines need it)")
    if policies is None:
        policies = res.policies
        if paper:
            policies = [p for p in PAPER_POLICIES if p in res.policies] or res.policies[:3]
    _check_policies(res.policies, policies)
    key = point if point is not None else res.points["point"].iloc[0]
    rep = replication if replication is not None else int(res.results["replication"].min())
    rows = timeline_rows(res, policies, key, rep)
    with figure_style():
        if paper:
            return TL.timeline(rows, width_in=COLUMN_IN, panel_in=0.95)
        return TL.timeline(rows)


def policy_tau(res: Results, policy: str) -> float | None:
    """The threshold ``tau`` of policy ``policy`` in the scenario (None when it has none)."""
    from ciarsim.scenario.loader import policy_label  # noqa: PLC0415

    for p in scenario_dict(res).get("policies") or []:
        if policy_label(p) == policy and isinstance(p.get("tau"), (int, float)):
            return float(p["tau"])
    return None


def token_map(res: Results, policy: str) -> Figure:
    """Sample images, where each token came from and the device's uncertainty U, with the
    policy's threshold tau marked on the U colour bar."""
    arrays = res.samples.get(slug(policy))
    if arrays is None:
        raise CiarsimError(f"{res.root}: no samples/{slug(policy)}.npz for policy {policy}")
    with figure_style():
        return _token_map(arrays, policy, tau=policy_tau(res, policy))


def compare_latency(a: Results, b: Results, x: str = RTT) -> Figure:
    """Two results folders against swept ``x``: A solid, B dashed; one row per combination of the
    other swept values (e.g. per device), at most four (the figure says when more exist)."""
    from ciarsim.report.compare import overlay_parts  # noqa: PLC0415

    sides, rows, note, styles = overlay_parts(a, b, x)
    with figure_style():
        return F.overlay(sides, x, styles, facets=rows, note=note)
