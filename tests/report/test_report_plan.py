"""Which figures a folder supports: threshold and load sweeps on synthetic tables."""

from matplotlib.figure import Figure

from ciarsim.report.load import load_results
from ciarsim.report.plan import Planned, Skipped, plan_figures
from ciarsim.report.stats import summary_table
from ciarsim.report.style import figure_style, policy_styles

from conftest import write_synthetic  # noqa: E402  (tests/report/conftest.py)


def _plan(root):
    res = load_results(root)
    summary = summary_table(res.results, res.points)
    return {e.name if isinstance(e, Planned) else e.title: e
            for e in plan_figures(res, summary, policy_styles(res.policies))}


def test_threshold_sweep_draws_cost_vs_quality_and_skips_network_figures(tmp_path):
    taus = [{"policies.ciar.tau": t, "policies.gated-entropy.tau": t} for t in (0.1, 0.3, 0.5)]
    plan = _plan(write_synthetic(tmp_path / "tau", ["base", "gated-entropy", "ciar"], taus))
    quality = plan["quality_vs_cost"]
    assert quality.title.startswith("Threshold sweep") and "policies.ciar.tau" in quality.caption
    assert isinstance(plan["Latency vs RTT"], Skipped)
    assert "needs both" in plan["Speed-up vs base over RTT and uplink bandwidth"].reason
    assert "messages.parquet" in plan["Timeline of one image per policy"].reason
    with figure_style():
        fig = quality.draw()
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax in fig.axes:  # every policy labelled directly, in its own colour
        labels = {t.get_text(): t.get_color() for t in ax.texts if t.get_text() != "better"}
        assert list(labels) == ["base", "gated-entropy", "ciar"]
        assert len(set(labels.values())) == 3


def test_load_sweep_draws_p95_against_arrival_rate(tmp_path):
    pts = [{"workload.arrival.rate_per_s": r} for r in (0.5, 1.0, 2.0)]
    plan = _plan(write_synthetic(tmp_path / "load", ["base", "ciar"], pts, reps=1))
    load = plan["load_p95"]
    assert "One replication" in load.caption
    with figure_style():
        fig = load.draw()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Arrival rate (images/s)" and ax.get_ylabel() == "P95 latency (s)"
