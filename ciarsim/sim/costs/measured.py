"""Measured step tables: a full (batch x context x new_tokens -> ms) grid of one model on one
hardware and runtime, interpolated multilinearly in log2 of each axis.
"""

from __future__ import annotations

import numpy as np

from ciarsim.sim.costs.profiles import profile_rows


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


def table_for(spec: dict, model: str) -> MeasuredTable | None:
    rows = profile_rows(spec["table"])
    sel = (rows["model"] == model) & (rows["mode"] == spec["table_mode"])
    if not sel.any():
        return None
    return MeasuredTable(
        rows["batch"][sel], rows["context"][sel], rows["new_tokens"][sel], rows["ms_median"][sel]
    )
