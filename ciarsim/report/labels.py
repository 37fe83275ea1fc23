"""Words and axes for swept parameters: axis labels with units, short facet labels from values
(``RTT 20 ms``, ``device apple-m4``), number formatting and tick placement that never lets two
labels collide. Shared by every report figure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

# swept path -> (axis label, factor applied to the values, short name for panel titles, unit)
PARAMS = {
    "network.rtt_ms": ("RTT (ms)", 1.0, "RTT", "ms"),
    "network.uplink_mbps": ("Uplink bandwidth (Mbit/s)", 1.0, "uplink", "Mbit/s"),
    "network.downlink_mbps": ("Downlink bandwidth (Mbit/s)", 1.0, "downlink", "Mbit/s"),
    "network.loss_rate": ("Packet loss rate (%)", 100.0, "loss", "%"),
    "network.jitter_ms": ("Jitter (ms)", 1.0, "jitter", "ms"),
    "workload.arrival.rate_per_s": ("Arrival rate (images/s)", 1.0, "arrivals", "images/s"),
    "workload.arrival.devices": ("Devices (phones sharing the cloud)", 1.0, "devices", ""),
}
_SUFFIX_UNITS = {"_ms": "ms", "_mbps": "Mbit/s", "_per_s": "1/s", "_bytes": "bytes", "_s": "s"}
_GREEK = {"tau": "τ", "rho": "ρ", "gamma": "γ"}
# models.<role>.<field>: the value alone names it (``device apple-m4``, ``cloud h200``)
_MODEL_FIELDS = {"hardware": "", "model": "", "runtime": "runtime "}


def param_axis(path: str) -> tuple[str, float]:
    """(axis label with unit, factor) for a swept parameter path."""
    if path in PARAMS:
        return PARAMS[path][0], PARAMS[path][1]
    leaf = path.rsplit(".", 1)[-1]
    for suffix, unit in _SUFFIX_UNITS.items():
        if leaf.endswith(suffix):
            return f"{leaf[: -len(suffix)].replace('_', ' ')} ({unit})", 1.0
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "policies":
        return f"{parts[1]} {_GREEK.get(parts[2], parts[2])}", 1.0
    return leaf.replace("_", " "), 1.0


def param_text(path: str, value: object) -> str:
    """A swept value as a short facet label: ``RTT 20 ms``, ``ciar τ 0.3``, ``device apple-m4``."""
    if path in PARAMS:
        _, factor, short, unit = PARAMS[path]
        v = value * factor if isinstance(value, (int, float)) else value
        return f"{short} {num(v)} {unit}".strip()
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "policies":
        return f"{parts[1]} {_GREEK.get(parts[2], parts[2])} {num(value)}"
    if len(parts) == 3 and parts[0] == "models" and parts[2] in _MODEL_FIELDS:
        return f"{parts[1]} {_MODEL_FIELDS[parts[2]]}{num(value)}"
    label, _ = param_axis(path)
    return f"{label} = {num(value)}"


def combo_text(combo: dict) -> str:
    """Several swept values as one short label, comma-separated."""
    return ", ".join(param_text(k, v) for k, v in combo.items())


def num(v: object) -> str:
    """A value in plain, short form (``0.3``, ``1e-06``, ``apple-m4``)."""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def time_unit(values_ms: Sequence[float]) -> tuple[str, float]:
    """Seconds when latencies exceed 2 s, else milliseconds: (unit, divisor)."""
    finite = [v for v in values_ms if np.isfinite(v)]
    return ("s", 1000.0) if finite and max(finite) > 2000.0 else ("ms", 1.0)


def use_log(path: str, xs: pd.Series) -> bool:
    """Log x for bandwidths spanning 10x or more, and for anything spanning 100x or more."""
    lo, hi = float(xs.min()), float(xs.max())
    if lo <= 0:
        return False
    return hi / lo >= (10 if path.endswith("_mbps") else 100)


def spaced_ticks(values: Sequence[float], log: bool, width_in: float,
                 char_in: float = 0.055) -> list[float]:  # fmt: skip
    """The swept values to label on an axis ``width_in`` inches wide, dropping values whose labels
    would touch the previous one's (7 pt digits are ~``char_in`` in wide); the last value is
    always kept."""
    vals = sorted(set(float(v) for v in values))
    if len(vals) < 2:
        return vals
    pos = np.log10(vals) if log else np.asarray(vals)
    span = float(pos[-1] - pos[0]) or 1.0
    at = (pos - pos[0]) / span * width_in
    half = [len(num(v)) * char_in / 2 + 0.04 for v in vals]
    def fits(a: int, b: int) -> bool:
        return at[b] - half[b] >= at[a] + half[a]

    keep = [0]
    for i in range(1, len(vals)):
        if fits(keep[-1], i):
            keep.append(i)
    last = len(vals) - 1
    if keep[-1] != last:
        if len(keep) > 1:
            keep[-1] = last
        elif fits(0, last):
            keep.append(last)
    return [vals[i] for i in keep]


def x_axis(ax, xs: pd.Series, log: bool) -> None:
    """Log scale if asked; ticks at the swept values (when there are few) in plain numbers, thinned
    so that no two labels touch."""
    if log:
        ax.set_xscale("log")
    values = sorted(set(xs.astype(float).tolist()))
    if len(values) <= 10:
        width = ax.get_figure(root=True).get_figwidth() * ax.get_position().width
        ticks = spaced_ticks(values, log, max(width, 1.0))
        ax.set_xticks(ticks, [num(v) for v in ticks])
        ax.minorticks_off()
