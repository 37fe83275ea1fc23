"""Cost model: measured points, interpolation, roofline shape, calibration fit, name checks."""

import csv
import math
from importlib import resources

import numpy as np
import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import CloudConfig, DeviceConfig, HardwareOverrides, ModelsConfig
from ciarsim.sim.costs import (
    CostModel, fitted_calibration, known_hardware, known_models, known_runtimes, validate_names,
)  # fmt: skip
from ciarsim.sim.nominal import NOMINAL_MODELS


def _rows(gpu: str) -> list[dict]:
    name = f"{gpu}_llamagen_step_latency.csv"
    path = resources.files("ciarsim").joinpath("data", "gpu_profiles", name)
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("gpu", ["h100", "h200"])
def test_every_measured_point_is_reproduced_exactly(gpu):
    models = {}
    for r in _rows(gpu):
        key = (r["model"], r["mode"])
        if key not in models:
            models[key] = CostModel(r["model"], gpu, r["mode"])
        c = models[key].cost(1, int(r["new_tokens"]), int(r["context"]), int(r["batch"]))
        assert c.source == "measured"
        assert c.total_ms == float(r["ms_median"])


def test_parameter_counts_match_the_measured_tables():
    seen = {r["model"]: float(r["params_m"]) for r in _rows("h100")}
    for name, params_m in seen.items():
        assert NOMINAL_MODELS[name].params / 1e6 == pytest.approx(params_m, rel=2e-3)
    assert NOMINAL_MODELS["ciar-device-xl"].params / 1e6 == pytest.approx(83.2, abs=0.1)


def test_interpolation_is_log_linear_between_grid_points():
    cm = CostModel("llamagen-xl", "h100", "cudagraph")
    # batch 2 lies 1/3 of the way from 1 to 8 in log2; context 128, 1 new token
    expect = 2.1279 * (2 / 3) + 2.3026 * (1 / 3)
    assert cm.cost(1, 1, 128, 2).total_ms == pytest.approx(expect, rel=1e-12)
    # context 256 lies half way from 128 to 512 in log2 (batch 1)
    assert cm.cost(1, 1, 256, 1).total_ms == pytest.approx((2.1279 + 2.2074) / 2, rel=1e-12)


def test_context_below_the_table_is_clamped_and_outside_falls_to_roofline():
    cm = CostModel("llamagen-xl", "h100", "cudagraph")
    assert cm.cost(1, 1, 40, 1).total_ms == 2.1279
    assert cm.cost(1, 1, 2000, 1).source == "roofline"
    assert cm.cost(1, 1, 512, 16).source == "roofline"  # batch 16 not measured in graph mode
    assert cm.cost(1, 64, 512, 1).source == "roofline"  # 64 new tokens not measured either


def test_sequential_op_is_the_sum_of_its_steps_with_growing_context():
    cm = CostModel("llamagen-xl", "h100", "cudagraph")
    whole = cm.cost(15, 1, 1020, 1)  # crosses the table's edge at 1024: mixed
    parts = [cm.cost(1, 1, 1020 + i, 1) for i in range(15)]
    assert whole.total_ms == pytest.approx(sum(p.total_ms for p in parts), rel=1e-12)
    assert whole.source == "mixed"
    assert whole.steps == 15


@pytest.mark.parametrize("hw", ["h100", "a100", "snapdragon-8-gen-3", "jetson-orin-nano"])
@pytest.mark.parametrize("model", ["llamagen-xl", "ciar-device-xl", "llamagen-3b"])
def test_roofline_is_monotone_in_context_and_batch(hw, model):
    cm = CostModel(model, hw, known_runtimes(hw)[0])
    ctx = np.arange(0, 5000, 37)
    for batch in (1, 3, 8, 32, 128):
        fixed, mem, comp, _, _ = cm.roofline(4, ctx, batch)
        t = fixed + np.maximum(mem, comp)
        assert np.all(np.diff(t) >= 0)
    per_batch = []
    for b in range(1, 65):
        fixed, mem, comp, _, _ = cm.roofline(4, np.array([300]), b)
        per_batch.append(fixed + max(mem[0], comp[0]))
    assert np.all(np.diff(per_batch) >= 0)


def test_h100_fit_error_is_reported_and_bounded():
    cal, rep = fitted_calibration("h100", "cudagraph", "llamagen-xl")
    assert rep.points == 18 and rep.rms_rel < 0.12 and rep.max_rel < 0.2
    assert cal.status == "FIT" and 0 < cal.eta_bw <= 1 and cal.t_fixed_ms > 0
    _, all_rep = fitted_calibration("h100", "cudagraph", "ciar-device-xl")  # all-model fit
    assert all_rep.points == 90 and all_rep.rms_rel < 0.2
    print(f"H100 cudagraph roofline fit: XL rms {rep.rms_rel:.3f} max {rep.max_rel:.3f}; "
          f"all models rms {all_rep.rms_rel:.3f} max {all_rep.max_rel:.3f}")


def test_phone_step_follows_the_assumed_calibration():
    cm = CostModel("ciar-device-xl", "snapdragon-8-gen-3", "npu")
    m = NOMINAL_MODELS["ciar-device-xl"]
    c = cm.cost(1, 1, 200, 1)
    mem = (m.weight_bytes + 201 * m.kv_bytes_per_token) / (0.35 * 76.8e6)
    assert c.source == "roofline" and c.total_ms == pytest.approx(2.0 + mem)
    assert cm.calibration.status == "ASSUMPTION"


def test_overrides_make_a_hypothetical_chip():
    ov = HardwareOverrides(mem_bw_gbps=124.5184, peak_tflops=1e6, t_fixed_ms=1.0, eta_bw=1, eta_f=1)
    cm = CostModel("ciar-device-xl", "snapdragon-8-gen-3", "npu", ov)
    assert cm.cost(1, 1, 0, 1).total_ms == pytest.approx(2.0 + 5120 / 124518400)
    xl = CostModel("llamagen-xl", "h100", "cudagraph", HardwareOverrides(eta_bw=0.5))
    assert xl.cost(1, 1, 512, 1).source == "roofline"


def test_names_are_checked_with_the_dotted_field():
    with pytest.raises(ScenarioError, match=r"^models\.cloud\.hardware: unknown hardware 'foo'"):
        validate_names(ModelsConfig(cloud=CloudConfig(hardware="foo")))
    with pytest.raises(ScenarioError, match=r"^models\.device\.model: unknown nominal model"):
        validate_names(ModelsConfig(device=DeviceConfig(model="gpt-5")))
    with pytest.raises(ScenarioError, match=r"device\.runtime: unknown runtime 'tpu'.*'npu'"):
        validate_names(ModelsConfig(device=DeviceConfig(runtime="tpu")))
    validate_names(ModelsConfig())
    assert "llamagen-xl" in known_models() and "h100" in known_hardware()


def test_a100_derivation_reproduces_the_published_vllm_step():
    cm = CostModel("llamagen-xl", "a100", "cudagraph")
    total = sum(cm.cost(1, 1, c, 16).total_ms for c in range(120, 120 + 576))
    assert total / 576 == pytest.approx(4840 / 576, rel=0.01)
    assert math.isclose(cm.calibration.t_fixed_ms, 5.24)


@pytest.mark.parametrize(
    "hw, model", [("h100", "llamagen-xl"), ("snapdragon-8-gen-3", "ciar-device-xl")]
)
def test_fast_paths_are_bit_identical_to_cost(hw, model):
    cm = CostModel(model, hw, known_runtimes(hw)[0])
    rng = np.random.default_rng(0)
    for _ in range(300):
        steps, new = int(rng.integers(1, 300)), int(rng.choice([1, 1, 2, 4, 7, 16, 40]))
        ctx, batch = int(rng.integers(0, 1400)), int(rng.choice([1, 2, 8, 9]))
        assert cm.op_ms(steps, new, ctx, batch) == cm.cost(steps, new, ctx, batch).total_ms
        assert cm.step_ms(new, ctx, batch) == cm.cost(1, new, ctx, batch).total_ms


def test_every_profile_prices_every_model():
    for hw in known_hardware():
        for rt in known_runtimes(hw):
            for model in known_models():
                cm = CostModel(model, hw, rt)
                for steps, new, ctx, batch in [(1, 1, 0, 1), (30, 1, 1100, 1), (1, 128, 0, 16)]:
                    c = cm.cost(steps, new, ctx, batch)
                    assert math.isfinite(c.total_ms) and c.total_ms > 0, (hw, rt, model)
                assert cm.calibration.status in {"FIT", "DERIVED", "ASSUMPTION"}


def test_measured_table_agrees_with_scipy_grid_interpolation():
    """The table's interpolation is scipy's multilinear RegularGridInterpolator in log2 of each
    axis (kept hand-written: it reproduces grid points bit for bit and is vectorised over context)."""
    from scipy.interpolate import RegularGridInterpolator

    t = CostModel("llamagen-xl", "h100", "cudagraph").table
    ref = RegularGridInterpolator((np.log2(t.b_axis), np.log2(t.c_axis), np.log2(t.n_axis)), t.grid)
    rng = np.random.default_rng(0)
    for _ in range(50):
        b = float(rng.uniform(t.b_axis[0], t.b_axis[-1]))
        n = float(rng.uniform(t.n_axis[0], t.n_axis[-1]))
        c = rng.uniform(t.c_axis[0], t.c_axis[-1], 7)
        want = ref(np.stack([np.full(7, np.log2(b)), np.log2(c), np.full(7, np.log2(n))], 1))
        np.testing.assert_allclose(t.lookup(n, c, b), want, rtol=1e-12)


def test_fixed_terms_are_scipy_nnls_solutions():
    """The closed-form non-negative fit of the fixed terms equals scipy.optimize.nnls per cell."""
    from scipy.optimize import nnls

    from ciarsim.sim.costs.roofline import _solve_fixed

    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, 12), rng.uniform(0.5, 2.0, 12) * np.arange(1, 13)
    resid = rng.normal(0.5, 1.0, (3, 4, 12))
    t0, t1, err = _solve_fixed(resid, a, b)
    for i, j in np.ndindex(3, 4):
        (x0, x1), _ = nnls(np.stack([a, b], 1), resid[i, j])
        if x0 > 0 and x1 > 0:  # interior optimum: the two-term solve is the NNLS solution
            assert (t0[i, j], t1[i, j]) == pytest.approx((x0, x1), rel=1e-9)
        else:  # on the boundary the two-term candidate is ruled out (the one-term ones cover it)
            assert err[i, j] == np.inf
    s, _, e = _solve_fixed(resid, a, None)
    for i, j in np.ndindex(3, 4):
        (x,), rnorm = nnls(a[:, None], resid[i, j])
        assert s[i, j] == pytest.approx(x, abs=1e-12) and e[i, j] == pytest.approx(rnorm**2, rel=1e-9)
