"""Compare two results folders: overlaid latency figures and a table of differences.

Points are matched on the values of every parameter swept in either run; a parameter one run did
not sweep takes that run's fixed value from its ``scenario.yaml`` (so a run sweeping RTT at
11.2 Mbit/s matches the 11.2 Mbit/s points of a run sweeping bandwidth at the same RTT). Rows pair
up per (matched point, policy label). Differences are B - A.

``compare`` writes into ``out_dir``: ``compare.md``, ``compare.html``, ``compare.csv``,
``compare.tex`` and ``figures/compare_latency_vs_<param>.{png,pdf,svg}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from ciarsim import io as store
from ciarsim.report import figures as F
from ciarsim.report import page
from ciarsim.report import tables as T
from ciarsim.report.load import Results, load_results, slug
from ciarsim.report.plan import Planned, Skipped
from ciarsim.report.stats import CI, points_in, summary_table
from ciarsim.report.style import FORMATS, figure_style, policy_styles, save_figure
from ciarsim.scenario.loader import raw_scenario

SIDES = ("A", "B")


def compare(dir1: str | Path, dir2: str | Path, out_dir: str | Path,
            formats: Iterable[str] = FORMATS) -> Path:  # fmt: skip
    """Compare results folder ``dir1`` (A) with ``dir2`` (B) into ``out_dir``; return the path of
    ``compare.md``. Raises CiarsimError if either is not a results folder."""
    formats = list(dict.fromkeys(["png", *formats]))
    runs = [load_results(dir1), load_results(dir2)]
    out = Path(out_dir)
    params = list(dict.fromkeys(runs[0].swept + runs[1].swept))
    points = [resolved_points(r, params) for r in runs]
    sums = [summary_table(r.results, p) for r, p in zip(runs, points)]
    names = side_names(runs)
    diff = differences(sums, params)
    entries = _overlays(runs, points, params, names)
    for e in entries:
        if isinstance(e, Planned):
            with figure_style():
                fig = e.draw()
            save_figure(fig, out / "figures" / e.name, formats)
    table = diff_table(diff, params, names)
    store.write_table(diff, out / "compare.csv")
    store.write_text(out / "compare.tex", page.tables_tex(f"{names[0]} vs {names[1]}", [table]))
    blocks = _blocks(runs, names, table, entries, formats, len(diff))
    store.write_text(out / "compare.md", page.to_markdown(blocks))
    store.write_text(out / "compare.html", page.to_html(blocks, out, f"{names[0]} vs {names[1]}"))
    return out / "compare.md"


def side_names(runs: list[Results]) -> list[str]:
    """``A: <scenario name>`` and ``B: <scenario name>`` (folder names if the names agree)."""
    names = [r.name for r in runs]
    if names[0] == names[1]:
        names = [r.root.name for r in runs]
    return [f"{s}: {n}" for s, n in zip(SIDES, names)]


def resolve_param(scenario: dict, path: str) -> object:
    """The value at dotted ``path`` of a scenario dict (``policies.<label or index>.<field>``
    finds a policy by label, by default label or by name); None if there is none."""
    node: object = scenario
    for part in path.split("."):
        if isinstance(node, list):
            node = _policy(node, part)
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
        if node is None:
            return None
    return node


def _policy(policies: list, key: str) -> dict | None:
    if key.isdigit():
        return policies[int(key)] if int(key) < len(policies) else None
    def label(p: dict) -> str:
        if p.get("label"):
            return str(p["label"])
        return f"gated-{p.get('signal', 'interval')}" if p.get("name") == "gated" else str(p.get("name"))
    hits = [p for p in policies if isinstance(p, dict) and label(p) == key]
    hits = hits or [p for p in policies if isinstance(p, dict) and p.get("name") == key]
    return hits[0] if len(hits) == 1 else None


def resolved_points(run: Results, params: list[str]) -> pd.DataFrame:
    """``run.points`` with a column for every parameter of ``params`` (fixed ones from the
    scenario); numbers as floats so both runs compare equal."""
    pts = run.points.copy()
    scenario = raw_scenario(run.scenario_text) or {}
    for p in params:
        if p not in pts:
            pts[p] = [resolve_param(scenario, p)] * len(pts)
        num = pd.to_numeric(pts[p], errors="coerce")
        pts[p] = num.astype(float) if num.notna().all() else pts[p].astype(str)
    return pts


def differences(sums: list[pd.DataFrame], params: list[str]) -> pd.DataFrame:
    """Matched (params, policy) rows: mean latency and speed-up of A and B and their differences."""
    keep = ["latency_mean_ms", "latency_mean_ms" + CI, "speedup_vs_base", "speedup_vs_base" + CI]
    a, b = (s[params + ["policy"] + keep] for s in sums)
    m = a.merge(b, on=params + ["policy"], suffixes=("_a", "_b"), how="inner")
    m["latency_diff_ms"] = m["latency_mean_ms_b"] - m["latency_mean_ms_a"]
    m["latency_diff_pct"] = 100.0 * m["latency_diff_ms"] / m["latency_mean_ms_a"]
    m["speedup_diff"] = m["speedup_vs_base_b"] - m["speedup_vs_base_a"]
    return m


def diff_table(diff: pd.DataFrame, params: list[str], names: list[str]) -> T.Table:
    header = [F.param_axis(p)[0] for p in params] + [
        "policy", "A mean (ms)", "B mean (ms)", "B - A (ms)", "B - A (%)", "A speed-up (×)",
        "B speed-up (×)", "B - A speed-up"]  # fmt: skip
    rows = []
    for _, r in diff.iterrows():
        lead = [f"{r[p] * F.param_axis(p)[1]:g}" if isinstance(r[p], float) else str(r[p])
                for p in params]  # fmt: skip
        rows.append(lead + [str(r["policy"]),
                            (r["latency_mean_ms_a"], r["latency_mean_ms" + CI + "_a"]),
                            (r["latency_mean_ms_b"], r["latency_mean_ms" + CI + "_b"]),
                            r["latency_diff_ms"], r["latency_diff_pct"],
                            (r["speedup_vs_base_a"], r["speedup_vs_base" + CI + "_a"]),
                            (r["speedup_vs_base_b"], r["speedup_vs_base" + CI + "_b"]),
                            r["speedup_diff"]])  # fmt: skip
    caption = (f"{names[0]} vs {names[1]}: mean latency per image (± 95% t interval across "
               "replications) and speed-up vs base at matching points; differences are B - A.")
    return T.Table(caption, header, rows, "tab:compare", tuple(range(len(params))))


def overlay_parts(a: Results, b: Results, x: str) -> tuple[list, list, str, dict]:
    """What the overlay of ``a`` and ``b`` against ``x`` draws: (sides: (name, summary) per run,
    facet rows: (title, point keys per side) for every combination of the other swept values
    either run has (at most four), a note saying what was left out, policy styles)."""
    runs = [a, b]
    params = list(dict.fromkeys(a.swept + b.swept))
    points = [resolved_points(r, params) for r in runs]
    sums = [summary_table(r.results, p) for r, p in zip(runs, points)]
    names = side_names(runs)
    others = [p for p in params if p != x]
    combos: list[dict] = []
    for pts in points:
        for c in pts[others].drop_duplicates().to_dict("records") if others else [{}]:
            if c not in combos and any(points_in(p, c) for p in points):
                combos.append(c)
    note = ""
    if len(combos) > MAX_FACETS:
        note = (f"Showing {MAX_FACETS} of {len(combos)} combinations of "
                f"{', '.join(F.param_axis(p)[0] for p in others)}; compare.csv has every point.")
        combos = combos[:MAX_FACETS]
    rows = [(F.combo_text(c), [points_in(p, c) for p in points]) for c in combos]
    sides = list(zip(names, sums))
    return sides, rows, note, policy_styles(a.policies + b.policies)


MAX_FACETS = 4


def _overlays(runs, points, params, names) -> list:
    from ciarsim.report.plots import compare_latency  # noqa: PLC0415

    out = []
    for x in params:
        varied = [p[x].nunique() >= 2 and pd.api.types.is_numeric_dtype(p[x]) for p in points]
        if x.startswith("policies.") or not any(varied):
            continue
        _, rows, note, _ = overlay_parts(runs[0], runs[1], x)
        shown = "; ".join(t for t, _ in rows if t)
        caption = ("Mean and p95 latency per image, one colour and marker per policy; "
                   f"solid, filled: {names[0]}; dashed, open: {names[1]}. Bands: 95% t intervals "
                   "across replications."
                   + (f" One row of panels per combination of the other swept values ({shown})."
                      if shown else "") + (f" {note}" if note else ""))  # fmt: skip
        out.append(Planned(f"compare_latency_vs_{slug(x.replace('.', '_'))}",
                           f"Latency vs {F.param_axis(x)[0]}", caption,
                           lambda x=x: compare_latency(runs[0], runs[1], x)))  # fmt: skip
    if not out:
        out.append(Skipped("Latency overlay", "no numeric parameter was swept in either run "
                           f"(swept: {', '.join(params) or 'nothing'})"))  # fmt: skip
    return out


def _blocks(runs, names, table, entries, formats, matched: int) -> list[page.Block]:
    B = page.Block
    intro = (f"{names[0]} (`{runs[0].root.name}`) against {names[1]} (`{runs[1].root.name}`). "
             f"{matched} (point, policy) pairs match on the swept parameters; a parameter one run "
             "did not sweep takes its fixed value from that run's scenario.yaml.")
    b = [B("h1", f"ciarsim comparison: {names[0]} vs {names[1]}"), B("p", intro),
         B("h2", "Differences"), B("table", table), B("h2", "Figures")]  # fmt: skip
    other = [f.upper() for f in formats if f != "png"]
    for e in entries:
        b += ([B("h3", e.title), B("figure", (e, other))] if isinstance(e, Planned)
              else [B("list", [f"**{e.title}** not drawn: {e.reason}."])])  # fmt: skip
    for name, r in zip(names, runs):
        b += [B("h2", f"Scenario {name}"), B("code", r.scenario_text)]
    return b

