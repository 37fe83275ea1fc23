"""The report's energy and cloud-cost part: two tables (the phone's energy per image, the cloud's
GPU time, price and energy per image) and a breakdown figure of the phone's energy per policy
(device compute, radio active, radio tail), from the per-image columns of ``results.parquet``
(``ciarsim.sim.energy``). Results written before those columns existed get nothing (no table,
no figure). With a mixed population (a ``group`` column) the tables add one row per group.

Units: J, s, USD. "Radio active" is the radio energy outside RRC tails (transfers at
``beta + alpha`` power and promotions); results without ``energy_radio_tail_j`` show the radio
as one bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ciarsim.report import tables as T
from ciarsim.report.figures import param_axis
from ciarsim.report.load import Results
from ciarsim.report.plan import Planned
from ciarsim.report.style import DOUBLE_IN, new_figure

NEEDED = ("energy_device_j", "energy_radio_j", "cloud_gpu_s", "cloud_usd", "energy_cloud_j")
_PARTS = (("energy_device_j", "device compute", "#4c72b0"),
          ("radio_active_j", "radio active (transfers, promotions)", "#dd8452"),
          ("energy_radio_tail_j", "radio tail (RRC, after transfers)", "#8c8c8c"))  # fmt: skip


def has_energy(res: Results) -> bool:
    """Whether the results carry the energy and cost columns."""
    return all(c in res.results.columns for c in NEEDED)


def _means(res: Results) -> pd.DataFrame:
    """Per (point, policy[, group]) means of the energy and cost columns, in result order."""
    df = res.results.copy()
    if "energy_radio_tail_j" in df:
        df["radio_active_j"] = df["energy_radio_j"] - df["energy_radio_tail_j"]
    keys = ["point", "policy"] + (["group"] if "group" in df else [])
    cols = [c for c in (*NEEDED, "radio_active_j", "energy_radio_tail_j") if c in df]
    out = df.groupby(keys, sort=False)[cols].mean().reset_index()
    if "group" in df:
        everyone = df.groupby(["point", "policy"], sort=False)[cols].mean().reset_index()
        out = pd.concat([everyone.assign(group="all"), out], ignore_index=True)
        order = {k: i for i, k in enumerate(dict.fromkeys(zip(df["point"], df["policy"])))}
        out["_o"] = [order[k] for k in zip(out["point"], out["policy"])]
        out = out.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
    return out


def _lead(res: Results, row: pd.Series) -> list:
    """Swept values (as the report's other tables show them), the policy, the group (if any)."""
    at = res.points.set_index("point").loc[row["point"]]
    cells = []
    for path in res.swept:
        v, factor = at[path], param_axis(path)[1]
        number = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        cells.append(f"{v * factor:g}" if number else str(v))
    return cells + [str(row["policy"])] + ([str(row["group"])] if "group" in row else [])


def _head(res: Results, m: pd.DataFrame) -> list[str]:
    return [param_axis(p)[0] for p in res.swept] + ["policy"] + (["group"] if "group" in m else [])


def energy_table(res: Results) -> T.Table:
    """The phone's energy per image (J): device compute, radio (its tail part), total."""
    m = _means(res)
    tail = "energy_radio_tail_j" in m
    header = _head(res, m) + ["device (J)", "radio (J)", *(["of it tail (J)"] if tail else []),
                              "phone total (J)"]  # fmt: skip
    rows = [_lead(res, r) + [float(r["energy_device_j"]), float(r["energy_radio_j"])]
            + ([float(r["energy_radio_tail_j"])] if tail else [])
            + [float(r["energy_device_j"] + r["energy_radio_j"])] for _, r in m.iterrows()]  # fmt: skip
    caption = (f"Energy per image on the phone, {res.name} (mean over images and replications): "
               "device compute = busy time x the device runtime's power (ciarsim/data/hardware.json); "
               "radio = RRC state machine of network.radio (ciarsim/data/radio.json), the tail "
               "after an image's last transfer charged to it (docs/energy-and-capacity.md).")
    return T.Table(caption, header, rows, "tab:energy")


def cloud_cost_table(res: Results) -> T.Table:
    """The cloud's GPU seconds, USD per 1,000 images and energy per image."""
    m = _means(res)
    header = _head(res, m) + ["GPU-s / image", "USD / 1k images", "cloud energy (J)"]
    rows = [_lead(res, r) + [float(r["cloud_gpu_s"]), 1000.0 * float(r["cloud_usd"]),
                             float(r["energy_cloud_j"])] for _, r in m.iterrows()]  # fmt: skip
    caption = (f"Cloud cost per image, {res.name}: the image's share of the GPU's busy time (each "
               "batched iteration split equally among its requests), priced at "
               "models.cloud.usd_per_gpu_hour (default: the hardware's usd_per_hour, an "
               "ASSUMPTION) and at the GPU's power (its TDP: an upper bound).")
    return T.Table(caption, header, rows, "tab:cloud-cost")


def energy_breakdown(res: Results) -> Figure:
    """Stacked bars per policy at the first sweep point: device compute, radio active, radio
    tail (J per image)."""
    m = _means(res)
    m = m[m["point"] == res.points["point"].iloc[0]]
    if "group" in m:
        m = m[m["group"] == "all"]
    fig = new_figure(DOUBLE_IN, 2.8)
    ax = fig.subplots()
    x = np.arange(len(m))
    bottom = np.zeros(len(m))
    parts = (_PARTS if "energy_radio_tail_j" in m
             else (_PARTS[0], ("energy_radio_j", "radio", "#dd8452")))  # fmt: skip
    for col, label, color in parts:
        v = m[col].to_numpy(dtype=float)
        ax.bar(x, v, bottom=bottom, color=color, label=label, width=0.7)
        bottom += v
    ax.set_xticks(x, m["policy"].tolist(), rotation=35, ha="right")
    ax.set_axisbelow(True)
    ax.set_ylabel("energy per image (J)")
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return fig


def energy_blocks(res: Results) -> tuple[list[T.Table], list[Planned]]:
    """The tables and the planned figure of this part (empty without energy columns)."""
    if not has_energy(res):
        return [], []
    caption = ("Mean energy per image on the phone, per policy (first sweep point): device "
               "compute, the radio while transferring (and promotions), and the radio's RRC tail. "
               "Assumptions and sources: docs/energy-and-capacity.md.")
    fig = Planned("energy_breakdown", "Phone energy per image", caption,
                  lambda: energy_breakdown(res))  # fmt: skip
    return [energy_table(res), cloud_cost_table(res)], [fig]
