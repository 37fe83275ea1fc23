"""Compute cost of forward steps of a nominal model on a piece of hardware under a runtime.

One ``CostModel`` per (nominal model, hardware, runtime). Its price for one step of ``new_tokens``
tokens on ``context`` cached tokens for ``batch`` sequences is:

- **measured**, where a measured step table (``ciarsim/data/gpu_profiles``) holds this model on
  this hardware and runtime and the point lies in the table's box: multilinear interpolation in
  (log2 batch, log2 context, log2 new_tokens) between the grid points, linear in milliseconds.
  Grid points are reproduced exactly. A context below the table's smallest is priced at the
  smallest (the KV read of < 128 tokens is < 1% of an XL step); anything else outside the box,
  or any ``HardwareOverrides`` set (a hypothetical chip), falls to the roofline.
- **roofline** otherwise: ``t_fixed + t_layer * layers + max(bytes / (eta_bw * BW),
  flops / (eta_f * F))`` with bytes and FLOPs from ``ciarsim.sim.nominal`` and the calibration of
  ``ciarsim/data/hardware.json``: FIT (least squares on the measured table, in relative error),
  DERIVED or ASSUMPTION.

A sequential op of ``steps`` steps costs the sum over steps with the context growing by
``new_tokens`` each step (vectorised, then cached per CostModel). Units: milliseconds, bytes,
FLOPs; bandwidth GB/s = 1e6 bytes/ms; TFLOP/s = 1e9 FLOP/ms.
"""

from __future__ import annotations

import copy

import functools
import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import Literal

import numpy as np

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import CloudConfig, DeviceConfig, HardwareOverrides, ModelsConfig
from ciarsim.sim.nominal import NOMINAL_MODELS, NominalModel

Source = Literal["measured", "roofline", "mixed"]


@dataclass(frozen=True, slots=True)
class StepCost:
    """Price of an op. ``fixed_ms``, ``memory_ms`` and ``compute_ms`` are always the roofline's
    terms (summed over steps); ``total_ms`` is the measured value where ``source`` is
    'measured' (both kinds of step summed where 'mixed')."""

    total_ms: float
    fixed_ms: float
    memory_ms: float
    compute_ms: float
    source: Source
    steps: int = 1
    bytes_moved: float = 0.0
    flops: float = 0.0


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


@dataclass(frozen=True)
class Hardware:
    name: str
    mem_bw_gbps: float
    peak_tflops: float
    source: str
    runtimes: dict


# --------------------------------------------------------------------------------------------
# package data


@functools.lru_cache(maxsize=1)
def _hardware_table() -> dict[str, Hardware]:
    text = resources.files("ciarsim").joinpath("data", "hardware.json").read_text()
    raw = json.loads(text)["hardware"]
    return {
        k: Hardware(k, float(v["mem_bw_gbps"]), float(v["peak_tflops"]), v["source"], v["runtimes"])
        for k, v in raw.items()
    }


@functools.lru_cache(maxsize=8)
def _profile_rows(relpath: str) -> dict[str, np.ndarray]:
    """Columns of a measured step table (numpy arrays keyed by column name)."""
    text = resources.files("ciarsim").joinpath("data", *relpath.split("/")).read_text()
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    cols = list(zip(*(ln.split(",") for ln in lines[1:])))
    out = {h: np.array(c) for h, c in zip(header, cols)}
    for h in ("batch", "context", "new_tokens"):
        out[h] = out[h].astype(np.int64)
    out["ms_median"] = out["ms_median"].astype(np.float64)
    return out


def known_models() -> list[str]:
    """Names of the nominal models the cost model can price."""
    return sorted(NOMINAL_MODELS)


def known_hardware() -> list[str]:
    """Names of the hardware profiles in ``ciarsim/data/hardware.json``."""
    return sorted(_hardware_table())


def known_runtimes(hardware: str) -> list[str]:
    """Runtime names available on ``hardware``."""
    return sorted(_hardware_table()[hardware].runtimes)


# --------------------------------------------------------------------------------------------
# shapes -> bytes and FLOPs


def step_bytes(m: NominalModel, new_tokens: int, context: np.ndarray, batch: int) -> np.ndarray:
    """Bytes moved in one step: weights once + KV read for ``context`` and written for
    ``new_tokens`` tokens per sequence (bytes)."""
    return m.weight_bytes + batch * (context + new_tokens) * m.kv_bytes_per_token


def step_flops(m: NominalModel, new_tokens: int, context: np.ndarray, batch: int) -> np.ndarray:
    """FLOPs of one step: 2 per weight per token + attention over ``context + new_tokens`` keys."""
    attn = 4 * m.layers * m.dim * new_tokens * (context + new_tokens)
    return batch * (2.0 * m.linear_params * new_tokens + attn)


# --------------------------------------------------------------------------------------------
# measured tables


class MeasuredTable:
    """A full grid (batch x context x new_tokens -> ms) of one model on one hardware/runtime."""

    def __init__(self, batch: np.ndarray, context: np.ndarray, new: np.ndarray, ms: np.ndarray):
        self.b_axis, self.c_axis, self.n_axis = (np.unique(a) for a in (batch, context, new))
        shape = (len(self.b_axis), len(self.c_axis), len(self.n_axis))
        if shape[0] * shape[1] * shape[2] != len(ms):
            raise ValueError("measured table is not a full batch x context x new_tokens grid")
        grid = np.full(shape, np.nan)
        idx = (
            np.searchsorted(self.b_axis, batch),
            np.searchsorted(self.c_axis, context),
            np.searchsorted(self.n_axis, new),
        )
        grid[idx] = ms
        assert not np.isnan(grid).any(), "duplicate grid points in measured table"
        self.grid = grid
        self._log_c = np.log2(self.c_axis)

    def covers(self, new_tokens: int, batch: int) -> bool:
        """Whether (new_tokens, batch) lies inside the table's box."""
        return bool(
            self.b_axis[0] <= batch <= self.b_axis[-1]
            and self.n_axis[0] <= new_tokens <= self.n_axis[-1]
        )

    def lookup(self, new_tokens: int, context: np.ndarray, batch: int) -> np.ndarray:
        """Interpolated ms per step; NaN where the context is above the table (context clamped
        up to the smallest measured one)."""
        curve = _interp_axis(self.b_axis, batch, self.grid)  # (nc, nn)
        curve = _interp_axis(self.n_axis, new_tokens, curve.T)  # (nc,)
        c = np.maximum(context, self.c_axis[0])
        out = np.interp(np.log2(c), self._log_c, curve)
        return np.where(c > self.c_axis[-1], np.nan, out)


def _interp_axis(axis: np.ndarray, x: float, values: np.ndarray) -> np.ndarray:
    """Linear interpolation in log2(x) along the first dimension of ``values``."""
    i = int(np.clip(np.searchsorted(axis, x, side="right") - 1, 0, len(axis) - 2))
    if len(axis) == 1:
        return values[0]
    lo, hi = np.log2(axis[i]), np.log2(axis[i + 1])
    w = (np.log2(x) - lo) / (hi - lo)
    if w == 0.0:
        return values[i]
    if w == 1.0:
        return values[i + 1]
    return values[i] * (1.0 - w) + values[i + 1] * w


def _table_for(spec: dict, model: str) -> MeasuredTable | None:
    rows = _profile_rows(spec["table"])
    sel = (rows["model"] == model) & (rows["mode"] == spec["table_mode"])
    if not sel.any():
        return None
    return MeasuredTable(
        rows["batch"][sel], rows["context"][sel], rows["new_tokens"][sel], rows["ms_median"][sel]
    )


# --------------------------------------------------------------------------------------------
# roofline fit


def _fit_points(spec: dict, models: tuple[str, ...]) -> tuple[list[NominalModel], dict]:
    rows = _profile_rows(spec["table"])
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
    hw = _hardware_table()[hardware]
    spec = hw.runtimes[runtime]
    measured = tuple(sorted(set(_fit_points(spec, tuple(NOMINAL_MODELS))[1]["model"])))
    if model in measured:
        return fit_calibration(hw, runtime, (model,), per_layer=False)
    return fit_calibration(hw, runtime, measured, per_layer=True)


# --------------------------------------------------------------------------------------------
# the cost model


class CostModel:
    """Prices forward steps of one nominal model on one hardware profile under one runtime."""

    def __init__(
        self,
        model: str,
        hardware: str,
        runtime: str,
        overrides: HardwareOverrides | None = None,
    ):
        _check_names(model, hardware, runtime, "")
        self.model = NOMINAL_MODELS[model]
        hw = _hardware_table()[hardware]
        spec = hw.runtimes[runtime]
        self.hardware, self.runtime = hardware, runtime
        self.fit: FitReport | None = None
        if spec["status"] == "FIT":
            self.calibration, self.fit = fitted_calibration(hardware, runtime, model)
        else:
            self.calibration = Calibration(
                spec["t_fixed_ms"], spec["t_layer_ms"], spec["eta_bw"], spec["eta_f"],
                spec["status"], spec["why"],
            )  # fmt: skip
        self.mem_bw_gbps, self.peak_tflops = hw.mem_bw_gbps, hw.peak_tflops
        self.table = _table_for(spec, model) if "table" in spec else None
        if overrides is not None and overrides.model_dump(exclude_none=True):
            self._apply(overrides)
        self._cache: dict[tuple[int, int, int, int], StepCost] = {}
        self._op_cache: dict[tuple[int, int, int, int], float] = {}
        self._curves: dict[tuple[int, int], list[float]] = {}  # per-step totals by context
        self._arrays: dict[tuple[int, int], np.ndarray] = {}  # the same, as arrays

    @classmethod
    def from_config(cls, cfg: CloudConfig | DeviceConfig, path: str) -> "CostModel":
        """Build from a cloud or device section; errors name ``path`` (e.g. 'models.cloud')."""
        _check_names(cfg.model, cfg.hardware, cfg.runtime, path)
        return cls(cfg.model, cfg.hardware, cfg.runtime, cfg.overrides)

    def with_plain_head(self) -> "CostModel":
        """The same device without the Inter-Head's radius half: a plain |V| output head, what
        the drafters of sd, lantern, code_split and the non-interval gated signals run."""
        if self.model.head_outputs == self.model.vocab:
            return self
        plain = copy.copy(self)
        plain.model = replace(self.model, name=f"{self.model.name} (plain head)",
                              head_outputs=self.model.vocab)
        plain.table = None  # a measured table priced the Inter-Head model
        plain._cache, plain._op_cache, plain._curves, plain._arrays = {}, {}, {}, {}
        return plain

    def _apply(self, o: HardwareOverrides) -> None:
        """Overrides make a hypothetical chip: the measured table no longer applies."""
        self.table = None
        self.mem_bw_gbps = o.mem_bw_gbps or self.mem_bw_gbps
        self.peak_tflops = o.peak_tflops or self.peak_tflops
        cal = self.calibration
        if o.t_fixed_ms is not None:
            cal = replace(cal, t_fixed_ms=o.t_fixed_ms, t_layer_ms=0.0)
        cal = replace(cal, eta_bw=o.eta_bw or cal.eta_bw, eta_f=o.eta_f or cal.eta_f)
        self.calibration = replace(cal, status="OVERRIDE")

    # -- pricing ------------------------------------------------------------------------------

    def roofline(self, new_tokens: int, context: np.ndarray, batch: int):
        """Roofline terms per step for an array of contexts: (fixed_ms, memory_ms, compute_ms,
        bytes, flops), arrays except fixed_ms (ms, ms, ms, bytes, FLOPs)."""
        cal, m = self.calibration, self.model
        nbytes = step_bytes(m, new_tokens, context, batch).astype(float)
        flops = step_flops(m, new_tokens, context, batch).astype(float)
        mem = nbytes / (cal.eta_bw * self.mem_bw_gbps * 1e6)
        comp = flops / (cal.eta_f * self.peak_tflops * 1e9)
        return cal.fixed_ms(m.layers), mem, comp, nbytes, flops

    def cost(self, op_steps: int, new_tokens: int, context: int, batch: int = 1) -> StepCost:
        """Price ``op_steps`` sequential steps of ``new_tokens`` tokens each for ``batch``
        sequences, the first on ``context`` cached tokens (context includes any text prefix)."""
        key = (op_steps, new_tokens, context, batch)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._price(op_steps, new_tokens, context, batch)
        return hit

    def step_ms(self, new_tokens: int, context: int, batch: int) -> float:
        """Total time of one step (ms); the cloud scheduler's hot path."""
        curve = self._curves.get((new_tokens, batch))
        if curve is None or context >= len(curve):
            curve = self._curve(new_tokens, batch, context + 1)
        return curve[context]

    def op_ms(self, op_steps: int, new_tokens: int, context: int, batch: int = 1) -> float:
        """``cost(...).total_ms`` (ms), bit-identical, from cached per-step curves."""
        key = (op_steps, new_tokens, context, batch)
        hit = self._op_cache.get(key)
        if hit is None:
            end = context + op_steps * new_tokens
            self._curve(new_tokens, batch, end)
            curve = self._arrays[(new_tokens, batch)]
            hit = self._op_cache[key] = float(curve[context:end:new_tokens].sum())
        return hit

    def _curve(self, new_tokens: int, batch: int, need: int) -> list[float]:
        """Per-step totals for contexts 0..n-1 (n >= need, a power of two >= 1024)."""
        key = (new_tokens, batch)
        curve = self._curves.get(key)
        if curve is not None and len(curve) >= need:
            return curve
        n = max(1024, 1 << (need - 1).bit_length())
        arr = self._totals(new_tokens, np.arange(n, dtype=np.int64), batch)
        self._arrays[key] = arr
        curve = self._curves[key] = arr.tolist()
        return curve

    def _totals(self, new: int, ctx: np.ndarray, batch: int) -> np.ndarray:
        """Per-step total ms at each context: measured where covered, else roofline."""
        fixed, mem, comp, _, _ = self.roofline(new, ctx, batch)
        total = fixed + np.maximum(mem, comp)
        if self.table is not None and self.table.covers(new, batch):
            meas = self.table.lookup(new, ctx, batch)
            total = np.where(np.isnan(meas), total, meas)
        return total

    def _price(self, steps: int, new: int, context: int, batch: int) -> StepCost:
        if steps < 1 or new < 1 or batch < 1 or context < 0:
            raise ValueError(f"cannot price steps={steps} new={new} ctx={context} batch={batch}")
        ctx = context + new * np.arange(steps, dtype=np.int64)
        fixed, mem, comp, nbytes, flops = self.roofline(new, ctx, batch)
        total = fixed + np.maximum(mem, comp)
        n_meas = 0
        if self.table is not None and self.table.covers(new, batch):
            meas = self.table.lookup(new, ctx, batch)
            ok = ~np.isnan(meas)
            n_meas = int(ok.sum())
            total = np.where(ok, meas, total)
        source = "measured" if n_meas == steps else ("roofline" if n_meas == 0 else "mixed")
        return StepCost(
            float(total.sum()), fixed * steps, float(mem.sum()), float(comp.sum()), source,
            steps, float(nbytes.sum()), float(flops.sum()),
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# name validation


def _check_names(model: str, hardware: str, runtime: str, path: str) -> None:
    pre = f"{path}." if path else ""
    if model not in NOMINAL_MODELS:
        raise ScenarioError(
            f"{pre}model: unknown nominal model {model!r}, expected one of {known_models()}"
        )
    if hardware not in _hardware_table():
        raise ScenarioError(
            f"{pre}hardware: unknown hardware {hardware!r}, expected one of {known_hardware()}"
        )
    if runtime not in _hardware_table()[hardware].runtimes:
        raise ScenarioError(
            f"{pre}runtime: unknown runtime {runtime!r} for hardware {hardware!r}, "
            f"expected one of {known_runtimes(hardware)}"
        )


def validate_names(models: ModelsConfig) -> None:
    """Raise ``ScenarioError`` naming the dotted field if a model/hardware/runtime is unknown."""
    _check_names(models.cloud.model, models.cloud.hardware, models.cloud.runtime, "models.cloud")
    _check_names(
        models.device.model, models.device.hardware, models.device.runtime, "models.device"
    )
