"""What a reviewer would check in each figure: ticks and facet titles that do not collide, the
break-even point marked, one colour per policy and labels that do not overlap, titles that name
the conditions, overlapping work visible in timelines, tau on the token map, every device in a
comparison."""

import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text  # text only: an annotation's own extent includes its arrow

from ciarsim.report import plots
from ciarsim.report.compare import compare
from ciarsim.report.labels import param_text, spaced_ticks
from ciarsim.report.load import load_results
from ciarsim.report.speedup import break_even, break_even_text
from ciarsim.report.style import figure_style, policy_styles
from ciarsim.report.timeline import sub_rows, timeline
from ciarsim.report.tokenmap import token_map

from conftest import write_synthetic  # noqa: E402  (tests/report/conftest.py)

SHIPPED_POLICIES = ["base", "sd", "lantern", "code_split", "gated-random", "gated-entropy",
                    "gated-max_prob", "gated-topk_set", "gated-uhlm", "gated-interval", "ciar",
                    "oracle", "device_only"]  # fmt: skip
DEVICES = ["snapdragon-8-gen-3", "apple-m4"]


def _draw(fig):
    """Lay out and draw ``fig`` on an Agg canvas (text extents need a renderer)."""
    FigureCanvasAgg(fig)
    with figure_style():
        fig.canvas.draw()


def _boxes(fig, texts):
    r = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, r) for t in texts if t.get_visible() and t.get_text()]


def _overlapping(boxes) -> list:
    return [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)]


def _two_d(tmp_path, name="two"):
    pts = [{"network.rtt_ms": r, "models.device.hardware": d} for d in DEVICES
           for r in (0, 1, 2, 5, 10, 20, 50, 100)]  # fmt: skip
    return load_results(write_synthetic(tmp_path / name, ["base", "ciar", "sd"], pts))


def test_tick_labels_of_close_swept_values_never_collide(tmp_path):
    kept = spaced_ticks([0, 1, 2, 5, 10, 20, 50, 100], log=False, width_in=2.5)
    assert kept[0] == 0 and kept[-1] == 100 and 1 not in kept
    fig = plots.latency_vs(_two_d(tmp_path))
    _draw(fig)
    for ax in fig.axes:
        assert not _overlapping(_boxes(fig, ax.get_xticklabels()))


def test_facet_titles_are_short_and_inside_the_figure(tmp_path):
    assert param_text("models.device.hardware", "apple-m4") == "device apple-m4"
    fig = plots.latency_vs(_two_d(tmp_path))
    _draw(fig)
    titles = [s._suptitle for s in fig.subfigs]
    assert [t.get_text() for t in titles] == ["device snapdragon-8-gen-3", "device apple-m4"]
    width = fig.bbox.width
    for box in _boxes(fig, titles):
        assert 0 <= box.x0 and box.x1 <= width


def test_break_even_is_interpolated_between_swept_values():
    assert break_even(np.array([10.0, 20, 40]), np.array([1.5, 1.1, 0.7])) == [(pytest.approx(25.0), "down")]
    assert break_even(np.array([1.0, 2]), np.array([0.5, 2.0])) == [(pytest.approx(4 / 3), "up")]
    assert break_even(np.array([1.0, 2]), np.array([0.5, 0.9])) == []


def test_a_one_dimensional_sweep_gets_speedup_vs_the_value_with_break_even(tmp_path):
    pts = [{"network.rtt_ms": r} for r in (10, 40, 160, 640)]
    res = load_results(write_synthetic(tmp_path / "one", ["base", "ciar"], pts))
    summary = res.summary_ci
    ciar = summary[summary["policy"] == "ciar"].copy()
    summary.loc[ciar.index, "speedup_vs_base"] = [2.0, 1.5, 0.8, 0.5]  # crosses 1 at 40..160
    fig = plots.speedup_vs(res, summary=summary)
    circles = [ln for ln in fig.axes[0].lines if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    assert len(circles) == 1 and circles[0].get_ydata()[0] == 1.0
    assert 40 < circles[0].get_xdata()[0] < 160
    assert "ciar at 1" in break_even_text(summary, "network.rtt_ms", res.points["point"].tolist())


def test_every_shipped_policy_has_its_own_colour():
    styles = policy_styles(SHIPPED_POLICIES + ["ciar_pipelined", "cloud_burst", "ciar-t0.1"])
    colors = [s.color for s in styles.values()]
    assert len(set(colors)) == len(colors)


def test_quality_vs_cost_labels_every_policy_without_overlap(tmp_path):
    res = load_results(write_synthetic(tmp_path / "q", SHIPPED_POLICIES, [{}], reps=1))
    fig = plots.quality_vs_cost(res)
    _draw(fig)
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_text() != "better"]
        assert sorted(t.get_text() for t in labels) == sorted(SHIPPED_POLICIES)
        assert len({t.get_color() for t in labels}) == len(SHIPPED_POLICIES)
        assert not _overlapping(_boxes(fig, labels))
    assert not fig.legends  # labelled directly


def test_breakdown_is_titled_with_the_scenario_and_its_conditions(tmp_path):
    res = load_results(write_synthetic(tmp_path / "b", ["base", "ciar"], [{}], reps=1))
    title = plots.latency_breakdown(res)._suptitle.get_text()
    assert title.startswith("synthetic: ") and "device snapdragon-8-gen-3 (npu)" in title
    assert "single point" not in title


def test_timeline_draws_overlapping_work_side_by_side():
    assert sub_rows(np.array([0.0, 1, 2, 5]), np.array([3.0, 4, 2.5, 6])).tolist() == [0, 1, 2, 0]
    seg = pd.DataFrame({"lane": ["device", "uplink", "uplink", "downlink"],
                        "start_ms": [0.0, 10, 30, 60], "end_ms": [100.0, 50, 70, 90]})  # fmt: skip
    fig = timeline([("ciar_pipelined", seg)])
    bars = fig.axes[0].collections
    uplink = [b for b in bars if any(abs(p.get_extents().y0 - 3) < 0.5 for p in b.get_paths())]
    ys = {round(p.get_extents().y0, 3) for b in uplink for p in b.get_paths()}
    assert len(ys) == 2  # the two uplink messages in flight at once are on two rows


def test_token_map_marks_tau_on_the_u_colour_bar():
    rng = np.random.default_rng(0)
    arrays = {"source": np.ones((2, 16), np.uint8), "u": rng.uniform(1e-6, 1e-5, (2, 16)),
              "tokens": np.zeros((2, 16), np.int32)}  # fmt: skip
    fig = token_map(arrays, "ciar", tau=2.65e-8)
    cbar = fig.axes[-1]
    assert any(t.get_text() == "τ = 2.65e-08" for t in cbar.texts)
    assert cbar.get_ylim()[0] <= 2.65e-8 <= cbar.get_ylim()[1]


def test_compare_shows_every_device(tmp_path):
    a, b = _two_d(tmp_path, "a"), _two_d(tmp_path, "b")
    fig = plots.compare_latency(a, b)
    assert [s._suptitle.get_text() for s in fig.subfigs] == [f"device {d}" for d in DEVICES]
    many = [{"network.rtt_ms": r, "network.uplink_mbps": u} for u in (1, 2, 5, 10, 20)
            for r in (10, 50)]  # fmt: skip
    c = write_synthetic(tmp_path / "c", ["base", "ciar"], many)
    text = (compare(c, c, tmp_path / "cmp") .read_text())
    assert "Showing 4 of 5 combinations" in text
