"""Compute cost of forward steps of a nominal model on a piece of hardware under a runtime.
Part of the sim layer: may import numpy, ciarsim.errors, ciarsim.scenario and ciarsim.sim.nominal.

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

One module per job: ``profiles`` (the data files, name checks), ``measured`` (table interpolation),
``roofline`` (bytes, FLOPs and the fitted calibration), ``model`` (``CostModel``, pricing with caches).
"""

from ciarsim.sim.costs.measured import MeasuredTable
from ciarsim.sim.costs.model import CostModel, Source, StepCost
from ciarsim.sim.costs.profiles import Hardware, known_hardware, known_models, known_runtimes, validate_names
from ciarsim.sim.costs.roofline import Calibration, FitReport, fit_calibration, fitted_calibration, step_bytes, step_flops

__all__ = [
    "Calibration", "CostModel", "FitReport", "Hardware", "MeasuredTable", "Source", "StepCost", "fit_calibration",
    "fitted_calibration", "known_hardware", "known_models", "known_runtimes", "step_bytes", "step_flops",
    "validate_names",
]  # fmt: skip
