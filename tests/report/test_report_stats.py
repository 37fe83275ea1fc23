"""Confidence intervals and the report's summary table, on hand-made numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from ciarsim.report.stats import mean_ci, ratio_ci, slices, summary_table, t975


def test_t_quantiles_match_published_values_and_approach_the_normal():
    # t(0.975, df) to 9 decimals (any statistics table; R qt(0.975, df))
    published = {1: 12.706204736, 2: 4.302652730, 10: 2.228138852, 30: 2.042272456,
                 40: 2.021075390, 120: 1.979930405}  # fmt: skip
    for df, t in published.items():
        assert t975(df) == pytest.approx(t, abs=1e-8), df
    assert t975(10**6) == pytest.approx(1.959963985, abs=1e-5) and math.isnan(t975(0))


def test_mean_ci_is_student_t_on_the_values():
    m, h = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and h == pytest.approx(4.302652730 * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci(np.array([5.0]))[1])


def test_ratio_ci_is_exact_when_the_ratio_is_constant():
    s, h = ratio_ci(np.array([10.0, 20.0, 30.0]), np.array([5.0, 10.0, 15.0]))
    assert s == 2.0 and h == pytest.approx(0.0)


def _images(latency: dict) -> pd.DataFrame:
    rows = []
    for (pol, rep), values in latency.items():
        for i, v in enumerate(values):
            rows.append({"point": "p", "point_index": 0, "policy": pol, "replication": rep,
                         "image": i, "latency_ms": v, "cloud_calls": 1, "cloud_passes": 4 if
                         pol == "base" else 1, "bytes_up": 10, "bytes_down": 5})  # fmt: skip
    return pd.DataFrame(rows)


def test_summary_uses_per_replication_statistics_and_paired_speedup():
    df = _images({("base", 0): [100, 100], ("base", 1): [120, 120],
                  ("fast", 0): [50, 50], ("fast", 1): [60, 60]})  # fmt: skip
    s = summary_table(df).set_index("policy")
    assert s.loc["base", "latency_mean_ms"] == 110.0
    assert s.loc["base", "latency_mean_ms_ci95"] == pytest.approx(12.7062 * 10.0)
    assert s.loc["fast", "speedup_vs_base"] == 2.0
    assert s.loc["fast", "speedup_vs_base_ci95"] == pytest.approx(0.0)
    assert s.loc["fast", "cloud_passes_pct"] == 25.0 and s.loc["fast", "images"] == 2
    assert math.isnan(s.loc["fast", "caption_consistency"])


def test_slices_facet_independent_parameters_and_ignore_zipped_ones():
    grid = pd.DataFrame({"point": list("abcd"), "point_index": range(4),
                         "rtt": [10, 10, 80, 80], "up": [2, 20, 2, 20]})  # fmt: skip
    combos, note = slices(grid, "rtt")
    assert combos == [{"up": 2}, {"up": 20}] and note == ""
    zipped = pd.DataFrame({"point": list("ab"), "point_index": [0, 1], "rtt": [10, 80],
                           "up": [2, 20]})  # fmt: skip
    assert slices(zipped, "rtt") == ([{}], "")
    big = pd.DataFrame({"point": [f"p{i}" for i in range(12)], "point_index": range(12),
                        "rtt": [10, 80] * 6, "up": np.repeat(range(6), 2)})  # fmt: skip
    combos, note = slices(big, "rtt", max_panels=4)
    assert len(combos) == 1 and "6 combinations" in note
