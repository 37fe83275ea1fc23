"""build_report end to end on a tiny results folder made by the runner from hand-built traces."""

import re
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ciarsim.errors import CiarsimError
from ciarsim.report import build_report
from ciarsim.report.load import load_results
from ciarsim.report.page import build_report as build
from ciarsim.report.plan import plan_figures
from ciarsim.report.stats import summary_table
from ciarsim.report.style import (
    COLUMN_IN, DOUBLE_IN, PNG_DPI, figure_style, policy_styles, save_figure,
)  # fmt: skip

FIGURES = ["latency_vs_rtt", "latency_vs_uplink", "speedup_vs_rtt", "speedup_vs_uplink",
           "speedup_map", "quality_vs_cost", "latency_breakdown", "timeline", "timeline_paper",
           "tokens_base", "tokens_ciar", "energy_breakdown"]  # fmt: skip


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory):
    """The report of a copy of the pristine results folder: (folder, report.md path)."""
    root = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(results_dir, root)
    return root, build_report(root)


def test_writes_pages_tables_and_every_supported_figure(report):
    root, md = report
    assert md == root / "report.md"
    for name in ("report.md", "report.html", "tables.tex", "summary_ci.csv"):
        assert (root / name).is_file(), name
    for fig in FIGURES:
        for ext in ("png", "pdf", "svg"):
            assert (root / "figures" / f"{fig}.{ext}").stat().st_size > 1000, f"{fig}.{ext}"
    text = md.read_text()
    for fig in FIGURES:
        assert f"](figures/{fig}.png)" in text
    assert "(figures/timeline.pdf)" in text and "(figures/timeline.svg)" in text


def test_skipped_figures_are_explained(report):
    text = report[1].read_text()
    skipped = text.split("### Figures not drawn", 1)[1].split("\n## ", 1)[0]
    assert "Latency vs packet loss" in skipped and "`network.loss_rate` was not swept" in skipped
    assert "Load: p95 latency" in skipped and "workload.arrival.rate_per_s" in skipped
    assert not (report[0] / "figures" / "latency_vs_loss.png").exists()


def test_pngs_are_images_of_the_intended_size(report):
    root = report[0]
    for fig in FIGURES:
        with Image.open(root / "figures" / f"{fig}.png") as im:
            im.verify()
        with Image.open(root / "figures" / f"{fig}.png") as im:
            assert im.format == "PNG" and im.width <= round(DOUBLE_IN * PNG_DPI), fig
    with Image.open(root / "figures" / "latency_vs_rtt.png") as im:  # two stats side by side
        assert im.width == round(DOUBLE_IN * PNG_DPI)
    with Image.open(root / "figures" / "speedup_map.png") as im:  # one policy: one column
        assert im.width == round(COLUMN_IN * PNG_DPI)


def test_tables_have_booktabs_rules_and_confidence_intervals(report):
    root, md = report
    tex = (root / "tables.tex").read_text()
    # latency, cost and quality, phone energy, cloud cost (ciarsim.report.energy)
    assert tex.count(r"\toprule") == 4 and tex.count(r"\midrule") == 4
    assert tex.count(r"\bottomrule") == 4 and r"\pm" in tex and "tab:latency" in tex
    summary = pd.read_csv(root / "summary_ci.csv")
    for col in ("latency_mean_ms_ci95", "latency_p95_ms_ci95", "latency_p99_ms_ci95",
                "speedup_vs_base_ci95", "caption_consistency_ci95"):  # fmt: skip
        assert col in summary and summary[col].notna().all(), col
    assert len(summary) == 8 and set(summary["replications"]) == {2}
    base = summary[summary["policy"] == "base"]
    assert np.allclose(base["speedup_vs_base"], 1.0)
    assert " ± " in md.read_text() and "Student-t" in md.read_text()


def test_report_embeds_figures_and_the_exact_scenario(report):
    root, md = report
    html = (root / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    scenario = (root / "scenario.yaml").read_text()
    assert scenario.strip() in md.read_text()
    assert "hardware.json" in md.read_text() and "ASSUMPTION" in md.read_text()
    assert str(root) not in md.read_text() and str(root) not in html  # no absolute paths


def test_rebuild_gives_byte_identical_files(results_dir, report, tmp_path):
    # a PNG-only rebuild elsewhere (cheap) against the full build: figures and tables must match,
    # the pages differ only by the PDF / SVG links
    other = tmp_path / "again"
    shutil.copytree(results_dir, other)
    build(other, formats=("png",))
    first = report[0]
    for name in ["tables.tex", "summary_ci.csv", *[f"figures/{f}.png" for f in FIGURES]]:
        assert (first / name).read_bytes() == (other / name).read_bytes(), name
    links = re.compile(r" \(\[PDF\]\([^)]*\) · \[SVG\]\([^)]*\)\)")
    assert links.sub("", (first / "report.md").read_text()) == (other / "report.md").read_text()


def test_pdf_and_svg_saves_are_byte_identical(results_dir, tmp_path):
    res = load_results(results_dir)
    entry = next(e for e in plan_figures(res, summary_table(res.results, res.points),
                                         policy_styles(res.policies))
                 if getattr(e, "name", "") == "timeline")
    for out in ("a", "b"):
        with figure_style():
            fig = entry.draw()
        save_figure(fig, tmp_path / out / "timeline", ("pdf", "svg"))
    for ext in ("pdf", "svg"):
        a, b = (tmp_path / d / f"timeline.{ext}" for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), ext
    assert b"CreationDate" not in (tmp_path / "a" / "timeline.pdf").read_bytes()


def test_not_a_results_folder_is_a_ciarsim_error(tmp_path):
    with pytest.raises(CiarsimError, match="no such folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(CiarsimError, match="not a results folder.*results.parquet"):
        build_report(tmp_path)
