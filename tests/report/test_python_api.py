"""The Python API: ``ciarsim.run`` / ``ciarsim.load`` / ``ciarsim.plots``, and docs/python-api.md's
worked example run block by block.

The example decodes with the hand-built traces of ``conftest.hand_decoder`` instead of the trained
models (a real decode of three policies takes minutes); everything after the decode (checks,
runner, report, tables, figures) is the real path.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import ciarsim
from ciarsim.errors import CiarsimError, ScenarioError, UsageError
from ciarsim.report import plots
from ciarsim.runner import run as runner

from conftest import hand_decoder  # noqa: E402  (tests/report/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "python-api.md"


def test_import_ciarsim_is_light():
    code = ("import sys, ciarsim; print(sorted(m for m in ('torch', 'matplotlib', 'pandas', "
            "'simpy') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """Run every python block of docs/python-api.md in order, in a folder that has the
    repository's scenarios/ and models/; returns the namespace and the folder."""
    work = tmp_path_factory.mktemp("api")
    for name in ("scenarios", "models"):
        (work / name).symlink_to(ROOT / name)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setattr(runner, "_default_decoder", lambda policy, workload, models, seed, *loaded: hand_decoder(policy, workload, models, seed))
    ns: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), ns)  # noqa: S102 - the doc's own example
    finally:
        mp.undo()
    return ns, work


def test_doc_example_runs_and_writes_what_it_says(example):
    ns, work = example
    out = work / "runs" / "rtt-sweep"
    for name in ("results.parquet", "summary.csv", "report.md", "speedup_vs_rtt.pdf",
                 "ciar_vs_base.png", "figures/speedup_vs_rtt.png"):  # fmt: skip
        assert (out / name).is_file(), name
    res = ns["res"]
    assert isinstance(res, ciarsim.Results)
    assert sorted(res.policies) == ["base", "ciar", "sd"]
    assert sorted(res.summary["network.rtt_ms"].unique()) == [10, 40, 160]
    assert len(res.results) == 3 * 3 * 2 * 4  # points x policies x replications x images
    assert res.messages is not None and set(res.points.columns) >= {"point", "network.rtt_ms"}


def test_every_figure_function_returns_a_figure(example):
    res = ns_res = example[0]["res"]
    figs = [plots.latency_vs(res), plots.speedup_vs(ns_res), plots.quality_vs_cost(res),
            plots.latency_breakdown(res), plots.timeline(res, paper=True),
            plots.token_map(res, "ciar"), plots.compare_latency(res, res)]  # fmt: skip
    assert all(isinstance(f, Figure) for f in figs)
    with pytest.raises(CiarsimError, match="network.uplink_mbps.*was not swept"):
        plots.speedup_map(res)
    with pytest.raises(CiarsimError, match="no policy lantern"):
        plots.latency_vs(res, policies=["lantern"])


def test_the_report_draws_through_the_same_functions(example, monkeypatch):
    from ciarsim.report import build_report  # noqa: PLC0415

    calls = []
    real = plots.speedup_vs
    monkeypatch.setattr(plots, "speedup_vs", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    build_report(example[1] / "runs" / "rtt-sweep")
    assert calls == ["network.rtt_ms"]


def test_bad_input_raises_one_clear_error(tmp_path):
    with pytest.raises(ScenarioError, match="rtt_ms"):
        ciarsim.run(ROOT / "scenarios" / "4g.yaml", overrides=["network.rtt_ms=-5"],
                    out=tmp_path / "x", report=False)  # fmt: skip
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        ciarsim.run(ROOT / "scenarios" / "4g.yaml", out=tmp_path / "notes.md")
    with pytest.raises(CiarsimError, match="no such folder"):
        ciarsim.load(tmp_path / "missing")
    assert not (tmp_path / "x").exists()
