"""The roofline: bytes and FLOPs of one step from a nominal model's shapes, and its calibration
(fixed terms and achieved fractions of the peaks) fitted by least squares to the measured tables.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ciarsim.sim.costs.profiles import Hardware, hardware_table, profile_rows
from ciarsim.sim.nominal import NOMINAL_MODELS, NominalModel


@dataclass(frozen=True)
class Calibration:
    """Roofline calibration of one (hardware, runtime[, model])."""

    t_fixed_ms: float
    t_layer_ms: float
    eta_bw: float
    eta_f: float
    status: str  # FIT | DERIVED | ASSUMPTION | OVERRIDE
    why: str = ""

    def fixed_ms(self, layers: int) -> float:
        """Fixed per-step time for a model of ``layers`` blocks (ms)."""
        return self.t_fixed_ms + self.t_layer_ms * layers


@dataclass(frozen=True)
class FitReport:
    """Relative error of a fitted roofline against the points it was fitted to."""

    points: int
    rms_rel: float
    max_rel: float
    models: tuple[str, ...]



def step_bytes(m: NominalModel, new_tokens: int, context: np.ndarray, batch: int) -> np.ndarray:
    """Bytes moved in one step: weights once + KV read for ``context`` and written for
    ``new_tokens`` tokens per sequence (bytes)."""
    return m.weight_bytes + batch * (context + new_tokens) * m.kv_bytes_per_token


def step_flops(m: NominalModel, new_tokens: int, context: np.ndarray, batch: int) -> np.ndarray:
    """FLOPs of one step: 2 per weight per token + attention over ``context + new_tokens`` keys."""
    attn = 4 * m.layers * m.dim * new_tokens * (context + new_tokens)
    return batch * (2.0 * m.linear_params * new_tokens + attn)


def _fit_points(spec: dict, models: tuple[str, ...]) -> tuple[list[NominalModel], dict]:
    rows = profile_rows(spec["table"])
    sel = (rows["mode"] == spec["table_mode"]) & np.isin(rows["model"], models)
    pts = {k: v[sel] for k, v in rows.items()}
    return [NOMINAL_MODELS[m] for m in pts["model"]], pts


def fit_calibration(
    hw: Hardware, runtime: str, models: tuple[str, ...], per_layer: bool
) -> tuple[Calibration, FitReport]:
    """Least-squares roofline calibration (relative error) on the measured points of ``models``.

    Grid search over (eta_bw, eta_f) on a log grid, refined once; for each pair the fixed terms
    (``t_fixed_ms`` and, if ``per_layer``, ``t_layer_ms``, both >= 0) are solved in closed form.
    """
    spec = hw.runtimes[runtime]
    ms, pts = _fit_points(spec, models)
    y = pts["ms_median"]
    mem_ms, comp_ms = _peak_terms(hw, ms, pts)
    layers = np.array([m.layers for m in ms], dtype=float)
    bw_grid, f_grid = np.geomspace(0.01, 1.0, 160), np.geomspace(0.002, 1.0, 160)
    best = _grid_fit(y, mem_ms, comp_ms, layers, bw_grid, f_grid, per_layer)
    bw_grid = np.geomspace(best[2] / 1.05, min(1.0, best[2] * 1.05), 41)
    f_grid = np.geomspace(best[3] / 1.05, min(1.0, best[3] * 1.05), 41)
    best = _grid_fit(y, mem_ms, comp_ms, layers, bw_grid, f_grid, per_layer)
    t0, t1, eta_bw, eta_f = (float(v) for v in best)
    pred = t0 + t1 * layers + np.maximum(mem_ms / eta_bw, comp_ms / eta_f)
    rel = pred / y - 1.0
    why = f"least squares on {len(y)} points of {spec['table']} ({spec['table_mode']})"
    cal = Calibration(t0, t1, eta_bw, eta_f, "FIT", why)
    report = FitReport(len(y), float(np.sqrt(np.mean(rel**2))), float(np.abs(rel).max()), models)
    return cal, report


def _peak_terms(hw: Hardware, ms: list[NominalModel], pts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Memory and compute time of each measured point at 100% of the peaks (ms, ms)."""
    rows = list(zip(ms, pts["new_tokens"], pts["context"], pts["batch"]))
    nbytes = np.array([float(step_bytes(m, n, c, b)) for m, n, c, b in rows])
    flops = np.array([float(step_flops(m, n, c, b)) for m, n, c, b in rows])
    return nbytes / (hw.mem_bw_gbps * 1e6), flops / (hw.peak_tflops * 1e9)


def _grid_fit(y, mem_ms, comp_ms, layers, bw_grid, f_grid, per_layer):
    """Best (t_fixed, t_layer, eta_bw, eta_f) over the grid, minimising relative squared error."""
    r = np.maximum(mem_ms / bw_grid[:, None, None], comp_ms / f_grid[None, :, None])  # (B,F,P)
    w = 1.0 / y
    resid = (y - r) * w  # what the fixed terms must explain, weighted
    cands = [_solve_fixed(resid, w, None)]
    if per_layer:
        cands += [_solve_fixed(resid, w, w * layers), _solve_fixed(resid, w * layers, None, True)]
    best = None
    for t0, t1, err in cands:
        i, j = np.unravel_index(np.argmin(err), err.shape)
        if best is None or err[i, j] < best[0]:
            best = (err[i, j], float(t0[i, j]), float(t1[i, j]), bw_grid[i], f_grid[j])
    return best[1:]


def _solve_fixed(resid, a, b, layer_only=False):
    """Non-negative least squares for resid ~ t0 * a + t1 * b per grid cell (b None: t1 = 0)."""
    if b is None:
        t = np.maximum((resid @ a) / (a @ a), 0.0)
        err = np.sum((resid - t[..., None] * a) ** 2, axis=-1)
        zero = np.zeros_like(t)
        return (zero, t, err) if layer_only else (t, zero, err)
    aa, bb, ab = a @ a, b @ b, a @ b
    ra, rb = resid @ a, resid @ b
    det = aa * bb - ab * ab
    t0, t1 = (ra * bb - rb * ab) / det, (rb * aa - ra * ab) / det
    err = np.sum((resid - t0[..., None] * a - t1[..., None] * b) ** 2, axis=-1)
    err = np.where((t0 < 0) | (t1 < 0), np.inf, err)
    return t0, t1, err


@functools.lru_cache(maxsize=64)
def fitted_calibration(hardware: str, runtime: str, model: str) -> tuple[Calibration, FitReport]:
    """The FIT calibration for ``model``: fitted to that model's points where it was measured,
    else to all measured models with a per-layer fixed term."""
    hw = hardware_table()[hardware]
    spec = hw.runtimes[runtime]
    measured = tuple(sorted(set(_fit_points(spec, tuple(NOMINAL_MODELS))[1]["model"])))
    if model in measured:
        return fit_calibration(hw, runtime, (model,), per_layer=False)
    return fit_calibration(hw, runtime, measured, per_layer=True)
