"""experiments/paper_check.py's parity-budget bisection on a tiny synthetic setting (issue 17)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ciarsim.policies import calibrate

PATH = Path(__file__).resolve().parents[2] / "experiments" / "paper_check.py"


@pytest.fixture()
def paper_check():
    spec = importlib.util.spec_from_file_location("paper_check", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parity_bisection_finds_the_lowest_share_within_the_margin(paper_check, monkeypatch):
    n, base_passes = 40, 257.0
    noise = np.random.default_rng(1).normal(0, 0.01, n)
    calls = []

    def thresholds(signals, rates, workload, models_cfg, seed, **kw):
        assert kw.get("split", "validation") == "validation"
        return {s: [1.0 - r for r in rates] for s in signals}  # send rate r <-> tau = 1 - r

    def decode(policy, workload, models_cfg, seed, models):
        if policy.name == "base":
            return np.full(n, 0.9) + noise, np.full(n, base_passes)
        r = 1.0 - policy.tau
        calls.append(r)
        cc = 0.9 - 0.3 * (1.0 - r) + noise  # within 0.03 of base from send rate 0.9 on
        return cc, np.full(n, base_passes * (0.06 + 0.94 * r))

    monkeypatch.setattr(calibrate, "signal_thresholds", thresholds)
    monkeypatch.setattr(paper_check, "_decode_quality", decode)
    out = paper_check.parity_budget(n, reps=200, calibration_images=4)
    rates = np.linspace(0.01, 0.99, 49)
    r_star = rates[rates >= 0.9 - 1e-9][0]
    expect = 100 * (0.06 + 0.94 * r_star)
    for label in ("ciar", "gated-entropy", "gated-random"):
        got = out["policies"][label]
        assert got["parity_budget_pct"] == pytest.approx(expect, abs=0.01)
        assert got["ci95"][0] <= got["parity_budget_pct"] <= got["ci95"][1]
    assert out["parity_budget_pct"] == out["policies"]["ciar"]["parity_budget_pct"]
    assert len(calls) <= 3 * 8  # bisection, not a scan of the 49-point grid


def test_parity_not_reached_is_reported_as_none(paper_check, monkeypatch):
    monkeypatch.setattr(calibrate, "signal_thresholds",
                        lambda signals, rates, *a, **k: {s: [1.0 - r for r in rates] for s in signals})
    monkeypatch.setattr(paper_check, "_decode_quality", lambda p, *a: (
        (np.full(8, 0.9), np.full(8, 257.0)) if p.name == "base" else (np.full(8, 0.5), np.full(8, 100.0))))
    out = paper_check.parity_budget(8, reps=20, calibration_images=4, policies={"ciar": ("ciar", "interval")})
    assert out["parity_budget_pct"] is None and out["ci95"] is None
