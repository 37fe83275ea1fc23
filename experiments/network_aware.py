"""Protocols that hide the network, measured at each shipped network's own conditions.

    python experiments/network_aware.py [--images 64] [--workers 2] [--networks wifi,5g,4g,4g-poor]

For each network (the shipped ``scenarios/<network>.yaml``: its link, its hardware) it runs one
policy list twice, with the device on the scenario's phone and on the cloud's GPU (the CIAR
paper's hardware), into ``reports/network-aware/<network>/{phone,gpu}/``; then an RTT sweep of
the main protocols on both devices (``rtt-phone/``, ``rtt-gpu/``: break-even RTT against base),
and on 4G a device-speed sweep (``4g/device-speed/``: at what phone speed each protocol beats
base). It draws the latency-vs-caption-consistency Pareto front per network and writes
``reports/network-aware/network-aware.md`` with the targets of the issue checked. Every run goes
through ``ciarsim run``; decode traces are cached and shared between networks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

OUT = Path("reports/network-aware")
NETWORKS = ["wifi", "5g", "4g", "4g-poor"]
GPU_DEVICE = ["models.device.hardware=h100", "models.device.runtime=cudagraph"]
RTTS = [0, 5, 10, 20, 40, 70, 100, 150]
# device speed: (memory bandwidth GB/s, fixed ms per step) pairs for the phone's roofline
SPEEDS = [(20, 2.0), (40, 2.0), (76.8, 2.0), (150, 1.0), (400, 0.5), (2000, 0.2)]
LAG = 12  # relaxed batching: drafts past a window ~ one 4G round trip of device steps


def policies(tau: float) -> list[dict]:
    """The compared protocols; ciar's threshold is the shipped scenario's."""
    c = {"tau": tau, "rho": 0.06}
    return [
        {"name": "base"},
        {"name": "device_only"},
        {"name": "code_split", "cloud_fraction": 0.3},
        {"name": "ciar", **c},
        {"name": "ciar_pipelined", **c, "window": 8, "label": "ciar_pipelined-w8"},
        {"name": "ciar_pipelined", **c, "window": 32, "label": "ciar_pipelined-w32"},
        {"name": "ciar_batched", **c, "label": "batched-exact-row"},
        {"name": "ciar_batched", **c, "mode": "relaxed", "label": "batched-relaxed-row"},
        {"name": "ciar_batched", **c, "mode": "relaxed", "lag": LAG, "label": f"batched-relaxed-row-lag{LAG}"},
        {"name": "ciar_batched", **c, "mode": "relaxed", "window": 32, "lag": LAG,
         "label": f"batched-relaxed-32-lag{LAG}"},
        {"name": "cloud_burst", **c, "k": 2, "label": "cloud_burst-k2"},
        {"name": "cloud_burst", **c, "k": 8, "label": "cloud_burst-k8"},
    ]


SWEPT = ["base", "code_split", "ciar", "ciar_pipelined-w8", "batched-exact-row",
         f"batched-relaxed-row-lag{LAG}", "cloud_burst-k8"]


def ciarsim(*args: str) -> None:
    print("$ ciarsim " + " ".join(args), flush=True)
    res = subprocess.run([sys.executable, "-m", "ciarsim.cli", *args], capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(res.returncode)


def scenario_for(network: str, pols: list[dict], images: int, tmp: Path, sweep: dict | None = None,
                 zip_groups: list | None = None) -> Path:
    """The shipped scenario of ``network`` with our policy list, written beside it (its relative
    paths resolve against its folder) under a hidden name in ``tmp``'s list for removal."""
    sc = yaml.safe_load(Path(f"scenarios/{network}.yaml").read_text())
    sc.update(policies=pols, sweep=sweep or {}, zip=zip_groups or [], replications=1)
    sc["workload"]["images"] = images
    path = Path("scenarios") / f".network-aware-{network}-{len(TEMP)}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    TEMP.append(path)
    return path


TEMP: list[Path] = []


def ciar_tau(network: str) -> float:
    sc = yaml.safe_load(Path(f"scenarios/{network}.yaml").read_text())
    return next(float(p["tau"]) for p in sc["policies"] if p["name"] == "ciar")


def run(path: Path, out: Path, workers: int, extra: list[str] = ()) -> pd.DataFrame:
    sets = [x for s in extra for x in ("--set", s)]
    ciarsim("run", str(path), "--out", str(out), "--workers", str(workers), *sets)
    return pd.read_csv(out / "summary.csv")


def break_even(summary: pd.DataFrame, points: pd.DataFrame) -> dict[str, float | None]:
    """Largest RTT (ms) at which each protocol is still at least as fast as base (linear
    interpolation between swept RTTs); None where it never is, inf where it always is."""
    df = summary.merge(points[["point", "network.rtt_ms"]], on="point")
    out = {}
    for label, g in df.groupby("policy"):
        g = g.sort_values("network.rtt_ms")
        r, s = g["network.rtt_ms"].to_numpy(float), g["speedup_vs_base"].to_numpy(float)
        if label == "base" or not (s >= 1).any():
            out[label] = None if label != "base" else float("inf")
            continue
        if (s >= 1).all():
            out[label] = float("inf")
            continue
        i = int(np.flatnonzero(s >= 1)[-1])
        if i + 1 < len(r):  # interpolate the crossing of speed-up 1 between r[i] and r[i+1]
            out[label] = float(r[i] + (s[i] - 1) / (s[i] - s[i + 1]) * (r[i + 1] - r[i]))
        else:
            out[label] = float(r[i])
    return out


def pareto(df: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated in (lower latency, higher caption consistency)."""
    d = df.sort_values(["latency_mean_ms", "caption_consistency"], ascending=[True, False])
    best, keep = -np.inf, []
    for _, row in d.iterrows():
        if row["caption_consistency"] > best:
            keep.append(row)
            best = row["caption_consistency"]
    return pd.DataFrame(keep)


def figure(network: str, by_device: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ciarsim.report.style import policy_styles

    labels = list(next(iter(by_device.values()))["policy"])
    styles = policy_styles(labels)
    fig, axes = plt.subplots(1, len(by_device), figsize=(7.0, 3.2), sharey=True, constrained_layout=True)
    for ax, (device, df) in zip(np.atleast_1d(axes), by_device.items()):
        front = pareto(df)
        ax.plot(front["latency_mean_ms"] / 1000, front["caption_consistency"], color="0.75", lw=3,
                zorder=0, label="Pareto front")
        for _, row in df.iterrows():
            st = styles[row["policy"]]
            ax.plot(row["latency_mean_ms"] / 1000, row["caption_consistency"], marker=st.marker,
                    color=st.color, ms=st.markersize + 1, ls="none", label=row["policy"])
        ax.set_xscale("log")
        ax.set_xlabel("mean latency per image (s, log)")
        ax.set_title(f"{network}: device on the {'phone' if device == 'phone' else 'cloud GPU'}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    np.atleast_1d(axes)[0].set_ylabel("caption consistency")
    handles, names = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center", fontsize=6.5, frameon=False)
    fig.savefig(path, dpi=200)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--networks", default=",".join(NETWORKS))
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    findings: dict = {"images": a.images, "networks": {}}
    tmp = Path("scenarios")
    try:
        for net in a.networks.split(","):
            tau, pols = ciar_tau(net), policies(ciar_tau(net))
            by_device, be = {}, {}
            for device, extra in (("phone", []), ("gpu", GPU_DEVICE)):
                by_device[device] = run(scenario_for(net, pols, a.images, tmp), OUT / net / device, a.workers, extra)
                swept = [p for p in pols if p.get("label", p["name"]) in SWEPT]
                rdir = OUT / net / f"rtt-{device}"
                s = run(scenario_for(net, swept, a.images, tmp, {"network.rtt_ms": RTTS}), rdir, a.workers, extra)
                be[device] = break_even(s, pd.read_csv(rdir / "points.csv"))
            figure(net, by_device, OUT / net / "pareto.png")
            findings["networks"][net] = {"ciar_tau": tau, "break_even_rtt_ms": be,
                                         **{d: df.to_dict("records") for d, df in by_device.items()}}
        if "4g" in a.networks.split(","):
            swept = [p for p in policies(ciar_tau("4g")) if p.get("label", p["name"]) in SWEPT + ["device_only"]]
            zip_group = {"models.device.overrides.mem_bw_gbps": [s[0] for s in SPEEDS],
                         "models.device.overrides.t_fixed_ms": [s[1] for s in SPEEDS]}
            run(scenario_for("4g", swept, a.images, tmp, zip_groups=[zip_group]),
                OUT / "4g" / "device-speed", a.workers)
    finally:
        for path in TEMP:
            path.unlink(missing_ok=True)
    (OUT / "findings.json").write_text(json.dumps(findings, indent=1, default=str))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
