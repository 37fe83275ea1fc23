"""The report of a results folder: figures, ``report.md``, ``report.html``, ``tables.tex``.

``build_report`` reads the folder (``load``), computes the statistics (``stats``), decides and
draws the figures (``plan``), and writes, inside the results folder:

- ``figures/<name>.png`` (report), ``.pdf`` and ``.svg`` (papers);
- ``summary_ci.csv``: the summary with 95% confidence half-widths (``*_ci95`` columns);
- ``tables.tex``: the tables as LaTeX booktabs floats;
- ``report.md`` and ``report.html`` (self-contained: figures embedded as data URIs).

Outputs carry no dates or absolute paths, so the same results give byte-identical files.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ciarsim import io as store
from ciarsim import __version__
from ciarsim.report import tables as T
from ciarsim.report.energy import energy_blocks
from ciarsim.report.figures import param_axis
from ciarsim.report.load import Results, load_results
from ciarsim.report.plan import Planned, Skipped, plan_figures
from ciarsim.report.stats import CI, summary_table
from ciarsim.report.style import FORMATS, figure_style, policy_styles, save_figure
from ciarsim.scenario.loader import raw_scenario

HARDWARE_JSON = Path(__file__).resolve().parent.parent / "data" / "hardware.json"


@dataclass(frozen=True)
class Block:
    """One piece of a page: kind in h1, h2, h3, p, list, table, figure, code."""

    kind: str
    content: object


def build_report(results_dir: str | Path, formats: Iterable[str] = FORMATS) -> Path:
    """Write the report of ``results_dir`` into it; return the path of ``report.md``.

    Raises CiarsimError if the folder is missing or is not a results folder.
    """
    formats = list(dict.fromkeys(["png", *formats]))  # the pages show the PNGs
    res = load_results(results_dir)
    summary = summary_table(res.results, res.points)
    styles = policy_styles(res.policies)
    entries = plan_figures(res, summary, styles)
    energy_tabs, energy_figs = energy_blocks(res)  # ciarsim.report.energy
    entries = [*entries, *energy_figs]
    figdir = res.root / "figures"
    for e in entries:
        if isinstance(e, Planned):
            with figure_style():
                fig = e.draw()
            save_figure(fig, figdir / e.name, formats)
    tabs = [latency_table(res, summary), cost_table(res, summary), *energy_tabs]
    store.write_table(summary, res.root / "summary_ci.csv")
    store.write_text(res.root / "tables.tex", tables_tex(res.name, tabs))
    blocks = page_blocks(res, tabs, entries, list(formats))
    store.write_text(res.root / "report.md", to_markdown(blocks))
    store.write_text(res.root / "report.html", to_html(blocks, res.root, res.name))
    return res.root / "report.md"


# ----------------------------------------------------------------------------------------------
# tables


def _param_columns(res: Results) -> list[tuple[str, str, float]]:
    """(swept path, header, factor) of the swept parameters shown in tables."""
    return [(p, param_axis(p)[0], param_axis(p)[1]) for p in res.swept]


def _lead(res: Results, row: pd.Series) -> list:
    cells = []
    for path, _, factor in _param_columns(res):
        v = row[path]
        number = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        cells.append(f"{v * factor:g}" if number else str(v))
    return cells + [str(row["policy"])]


def latency_table(res: Results, summary: pd.DataFrame) -> T.Table:
    """Latency statistics (ms) ± 95% CI and speed-up vs base, per point and policy."""
    stats = ["latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
    header = [h for _, h, _ in _param_columns(res)] + ["policy", "mean (ms)", "p50 (ms)",
                                                       "p95 (ms)", "p99 (ms)", "speed-up (×)"]
    rows = [_lead(res, r) + [(r[c], r[c + CI]) for c in stats]
            + [(r["speedup_vs_base"], r["speedup_vs_base" + CI])]
            for _, r in summary.iterrows()]  # fmt: skip
    reps = int(summary["replications"].max())
    caption = (f"Latency per image, {res.name}: mean of the per-replication statistic ± half-width "
               f"of its 95% Student-t interval across {reps} replication(s); speed-up = mean "
               "latency of base / of the policy at the same point (± 95% delta-method interval).")
    return T.Table(caption, header, rows, "tab:latency", tuple(range(len(res.swept))))


def cost_table(res: Results, summary: pd.DataFrame) -> T.Table:
    """Cloud work, traffic and quality per point and policy."""
    header = [h for _, h, _ in _param_columns(res)] + [
        "policy", "cloud passes (% of base)", "round trips", "up (KB)", "down (KB)",
        "caption consistency", "FD"]  # fmt: skip
    rows = [_lead(res, r) + [r["cloud_passes_pct"], r["cloud_calls_mean"],
                             r["bytes_up_mean"] / 1e3, r["bytes_down_mean"] / 1e3,
                             (r["caption_consistency"], r["caption_consistency" + CI]), r["fd"]]
            for _, r in summary.iterrows()]  # fmt: skip
    caption = (f"Cost and quality, {res.name}: cloud forward passes as % of base (the paper's "
               "\"cloud calls\"), network round trips and bytes per image (1 KB = 1000 B), "
               "caption consistency (mean over images ± 95% t interval; higher is better) and FD "
               "of the image set (lower is better).")  # fmt: skip
    return T.Table(caption, header, rows, "tab:cost-quality", tuple(range(len(res.swept))))


def tables_tex(name: str, tabs: list[T.Table]) -> str:
    head = (f"% Tables of the ciarsim report '{name}' (ciarsim {__version__}).\n"
            "% Needs \\usepackage{booktabs} in the preamble.\n\n")  # fmt: skip
    return head + "\n".join(T.to_latex(t) for t in tabs)


# ----------------------------------------------------------------------------------------------
# page content


NOTES = [
    "**Latency** (ms): from an image's request to its last token on the phone, simulated by the "
    "SimPy world. Its parts (device compute, uplink, downlink, RTT wait, cloud queue, cloud "
    "compute) sum to it for stop-and-wait protocols. Where a protocol overlaps work (device "
    "compute during a request, several requests in flight) each part is its own busy time, so "
    "they can sum to more; `exposed_wait_ms` is the time the phone actually waited.",
    "**mean / p50 / p95 / p99**: computed over the images of each replication, then averaged over "
    "replications; ± is the half-width of the 95% Student-t interval across replications.",
    "**Speed-up vs base**: mean latency of `base` (cloud-only decoding) / mean latency of the "
    "policy, at the same sweep point; > 1 is faster than base. Interval: ratio estimator (delta "
    "method) on paired replications (replication r of every policy shares one timing seed).",
    "**Cloud passes (% of base)**: the cloud's sequential forward passes per image, as a share of "
    "base's (the CIAR paper's \"cloud calls\"). **Round trips**: request/response exchanges over "
    "the network.",
    "**Caption consistency**: how well an image matches its caption according to the attribute "
    "classifier (a CLIP-score analogue; higher is better). **FD**: Fréchet distance of the "
    "policy's image set to real images of the same prompts in the classifier's feature space "
    "(an FID analogue; lower is better). Both come from the decision models, not from timing, "
    "so they do not vary across replications.",
]

SOURCES = [
    "**Measured**: cloud GPU step latencies (LlamaGen-shaped steps on H100/H200, "
    "`ciarsim/data/gpu_profiles`, provenance in its PROVENANCE.md; a roofline fitted to the same "
    "table fills the gaps). Decisions and image quality come from the trained decision models.",
    "**Cited**: link capacities, RTTs and loss of the shipped scenarios (their comments cite "
    "public measurement sets); hardware peak bandwidth and compute from vendor datasheets.",
    "**Assumption**: phone and board runtime efficiencies are assumptions, labelled "
    "`ASSUMPTION` in `ciarsim/data/hardware.json`; latencies that depend on device compute are "
    "estimates accordingly.",
]


def provenance_rows(scenario_text: str) -> list[list[str]]:
    """(role, hardware, runtime, status, basis) of the scenario's cloud and device cost models."""
    raw = raw_scenario(scenario_text)
    try:
        models = raw.get("models", {})
        hw = json.loads(HARDWARE_JSON.read_text())["hardware"]
    except (OSError, ValueError, AttributeError):
        return []
    rows = []
    for role in ("cloud", "device"):
        m = models.get(role) or {}
        name, runtime = str(m.get("hardware", "?")), str(m.get("runtime", "?"))
        entry = hw.get(name, {}).get("runtimes", {}).get(runtime, {})
        status = entry.get("status", "unknown")
        overridden = [k for k, v in (m.get("overrides") or {}).items() if v is not None]
        if overridden:
            status += f" (overridden in the scenario: {', '.join(overridden)})"
        rows.append([role, name, runtime, status, entry.get("why", "not in hardware.json")])
    return rows


def page_blocks(res: Results, tabs: list[T.Table], entries, formats: list[str]) -> list[Block]:
    """The report page as blocks, rendered to Markdown and to HTML."""
    n_pts, n_pol = len(res.points), len(res.policies)
    reps = int(res.results["replication"].nunique())
    b = [Block("h1", f"ciarsim report: {res.name}"),
         Block("p", f"{n_pts} sweep point(s) × {n_pol} policies × {reps} replication(s); built "
                    f"by ciarsim {__version__} from {_inputs(res)} in this folder. Tables are "
                    "also in `tables.tex` (LaTeX booktabs) and `summary_ci.csv`."),
         Block("h2", "Summary"), *[Block("table", t) for t in tabs],
         Block("h2", "Figures")]  # fmt: skip
    other = [f.upper() for f in formats if f != "png"]
    for e in entries:
        if isinstance(e, Planned):
            b += [Block("h3", e.title), Block("figure", (e, other))]
    skipped = [e for e in entries if isinstance(e, Skipped)]
    if skipped:
        b += [Block("h3", "Figures not drawn"),
              Block("list", [f"**{e.title}**: {e.reason}." for e in skipped])]  # fmt: skip
    b += [Block("h2", "What the numbers mean"), Block("list", NOTES),
          Block("h2", "Where the numbers come from"), Block("list", SOURCES)]  # fmt: skip
    prov = provenance_rows(res.scenario_text)
    if prov:
        b.append(Block("table", T.Table("Cost models of this scenario (status from "
                                        "ciarsim/data/hardware.json)",
                                        ["role", "hardware", "runtime", "status", "basis"], prov)))
    b += [Block("h2", "Scenario (exact, resolved)"), Block("code", res.scenario_text)]
    return b


def _inputs(res: Results) -> str:
    names = ["results.parquet", "points.csv"] + ["messages.parquet"] * (res.messages is not None)
    names += ["samples/"] * bool(res.samples) + ["scenario.yaml"]
    return ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"


def to_markdown(blocks: list[Block]) -> str:
    out = []
    for blk in blocks:
        k, c = blk.kind, blk.content
        if k in ("h1", "h2", "h3"):
            out.append("#" * int(k[1]) + " " + str(c))
        elif k == "p":
            out.append(str(c))
        elif k == "list":
            out.append("\n".join(f"- {x}" for x in c))
        elif k == "table":
            out.append(T.to_markdown(c).rstrip("\n"))
        elif k == "figure":
            e, other = c
            links = " · ".join(f"[{f}](figures/{e.name}.{f.lower()})" for f in other)
            out.append(f"![{e.title}](figures/{e.name}.png)\n\n{e.caption}"
                       + (f" ({links})" if links else ""))  # fmt: skip
        elif k == "code":
            out.append("```yaml\n" + str(c).rstrip("\n") + "\n```")
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem;display:block;overflow-x:auto}
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.4rem}
th,td{padding:.2rem .6rem}thead th{border-top:2px solid #222;border-bottom:1px solid #222}
tbody tr:last-child td{border-bottom:2px solid #222}td.num,th.num{text-align:right}
td.txt,th.txt{text-align:left}figure{margin:1rem 0}img{max-width:100%;height:auto}
figcaption{font-size:.9rem;color:#444}code{background:#f4f4f4;padding:0 .2rem}
pre{background:#f6f6f6;padding:.8rem;overflow-x:auto;font-size:.8rem}"""


def _inline(text: str) -> str:
    """Escape ``text`` for HTML; `code` and **bold** become tags."""
    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def to_html(blocks: list[Block], root: Path, title: str) -> str:
    """A self-contained HTML page: PNG figures embedded as data URIs."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape('ciarsim report: ' + title)}</title>", f"<style>{CSS}</style>",
           "</head>", "<body>"]  # fmt: skip
    for blk in blocks:
        k, c = blk.kind, blk.content
        if k in ("h1", "h2", "h3"):
            out.append(f"<{k}>{_inline(str(c))}</{k}>")
        elif k == "p":
            out.append(f"<p>{_inline(str(c))}</p>")
        elif k == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in c) + "</ul>")
        elif k == "table":
            out.append(T.to_html(c))
        elif k == "figure":
            e, other = c
            data = base64.b64encode((root / "figures" / f"{e.name}.png").read_bytes()).decode()
            links = " · ".join(f'<a href="figures/{e.name}.{f.lower()}">{f}</a>' for f in other)
            out.append(f'<figure><img alt="{html.escape(e.title)}" src="data:image/png;base64,'
                       f'{data}"><figcaption>{_inline(e.caption)}'
                       + (f" ({links})" if links else "") + "</figcaption></figure>")  # fmt: skip
        elif k == "code":
            out.append(f"<pre><code>{html.escape(str(c))}</code></pre>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
