"""``CostModel``: the price of forward steps of one nominal model on one hardware profile under one
runtime, measured where a table covers the step, roofline elsewhere, with per-instance caches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ciarsim.scenario.schema import CloudConfig, DeviceConfig, HardwareOverrides
from ciarsim.sim.costs.measured import table_for
from ciarsim.sim.costs.profiles import check_names, hardware_table
from ciarsim.sim.costs.roofline import Calibration, FitReport, fitted_calibration, step_bytes, step_flops
from ciarsim.sim.nominal import NOMINAL_MODELS

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



class CostModel:
    """Prices forward steps of one nominal model on one hardware profile under one runtime."""

    def __init__(
        self,
        model: str,
        hardware: str,
        runtime: str,
        overrides: HardwareOverrides | None = None,
    ):
        check_names(model, hardware, runtime, "")
        self.model = NOMINAL_MODELS[model]
        hw = hardware_table()[hardware]
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
        self.table = table_for(spec, model) if "table" in spec else None
        if overrides is not None and overrides.model_dump(exclude_none=True):
            self._apply(overrides)
        self._cache: dict[tuple[int, int, int, int], StepCost] = {}
        self._op_cache: dict[tuple[int, int, int, int], float] = {}
        self._curves: dict[tuple[int, int], list[float]] = {}  # per-step totals by context
        self._arrays: dict[tuple[int, int], np.ndarray] = {}  # the same, as arrays

    @classmethod
    def from_config(cls, cfg: CloudConfig | DeviceConfig, path: str) -> "CostModel":
        """Build from a cloud or device section; errors name ``path`` (e.g. 'models.cloud')."""
        check_names(cfg.model, cfg.hardware, cfg.runtime, path)
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
