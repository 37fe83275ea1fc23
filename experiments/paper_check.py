"""Reproduce CIAR's compute-only claims on our models, then put a network under them.

    python experiments/paper_check.py [--images 64] [--workers 2]

1. Calibrates each gating signal's threshold to equal cloud-call budgets (``ciarsim thresholds``) on
   the validation prompt split (``ciarsim.nn.splits``); every run below reports on test prompts.
2. Runs ``scenarios/ideal.yaml`` (the paper's accounting: no network, device and cloud costed on
   one H100) with every gated signal at the same send rate, and writes the paper's table to
   ``reports/paper-check/summary.csv`` / ``paper-check.md``.
3. Runs the threshold sweep (one zip group of thresholds per signal) for the cloud-calls vs
   quality curves (``reports/paper-check/thresholds/``).
4. Sweeps the RTT on the ideal hardware and on the 4G phone setup to find the break-even RTT at
   which ciar stops beating base (``reports/paper-check/rtt-*``).
5. Parity budget (issue 17): for ciar, gated-entropy and gated-random, bisection on tau for the
   lowest cloud-pass share (% of base's passes) at which the policy's caption consistency is within
   ``PARITY_MARGIN`` of base's, on the test prompts, with a 95% bootstrap interval over prompts
   (``reports/paper-check/parity.json``). Tau moves along the signal's score quantiles measured on
   validation prompts, so nothing is chosen on test.
6. Device-speed sensitivity: the phone's roofline swept (memory bandwidth, fixed cost per step;
   hypothetical chips) across the published bounds on phone decoding speed (3.9 ms/token:
   SmolLM2-135M on a Snapdragon 8 Elite NPU with ExecuTorch; ~20 ms/token: Llama-3.2-1B 4-bit on a
   Snapdragon 8 Gen 3 CPU), compute-only and over the 4G link (``reports/paper-check/device-speed*``).
Every step goes through the product's own commands; decode traces are cached and shared.
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

OUT = Path("reports/paper-check")
SIGNALS = ["random", "entropy", "max_prob", "topk_set", "uhlm", "interval"]
CURVE_RATES = [0.05, 0.15, 0.35, 0.6]
TABLE_RATE = 0.25  # share of device tokens sent: with the 6% cloud prefix, ~30% cloud passes
COLUMNS = ["policy", "speedup_vs_base", "cloud_calls_pct", "caption_consistency", "fd"]


def ciarsim(*args: str) -> str:
    cmd = [sys.executable, "-m", "ciarsim.cli", *args]
    print("$ ciarsim " + " ".join(args), flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(res.returncode)
    return res.stdout


def calibrate(images: int) -> dict[str, list[float]]:
    from ciarsim.policies.calibrate import signal_thresholds
    from ciarsim.scenario.schema import ModelsConfig, WorkloadConfig

    rates = sorted(set(CURVE_RATES + [TABLE_RATE]))
    taus = signal_thresholds(SIGNALS, rates, WorkloadConfig(images=images), ModelsConfig(), 0,
                             k=8, samples=20)  # as in the shipped scenarios
    table = {s: taus[s][rates.index(TABLE_RATE)] for s in SIGNALS}
    curve = {s: [taus[s][rates.index(r)] for r in CURVE_RATES] for s in SIGNALS}
    (OUT / "thresholds.json").write_text(json.dumps({"table_rate": TABLE_RATE, "table": table,
                                                     "curve_rates": CURVE_RATES, "curve": curve},
                                                    indent=2))  # fmt: skip
    return {"table": table, "curve": curve}


def update_scenarios(table: dict[str, float], folder: Path = Path("scenarios")) -> list[Path]:
    """Write the equal-budget taus into the shipped scenarios' policy lines, comments untouched."""
    import re

    changed = []
    for path in sorted(folder.glob("*.yaml")):
        text = path.read_text()
        new = text
        for s in SIGNALS:
            new = re.sub(r"(signal: %s,[^}\n]*tau: )[^,}\s]+" % s, lambda m: m.group(1) + f"{table[s]:.4g}", new)
        new = re.sub(r"(name: ciar, tau: )[^,}\s]+", lambda m: m.group(1) + f"{table['interval']:.4g}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def tau_overrides(taus: dict[str, float]) -> list[str]:
    sets = [f"policies.gated-{s}.tau={taus[s]!r}" for s in SIGNALS]
    return sets + [f"policies.ciar.tau={taus['interval']!r}"]


def paper_table(run_dir: Path) -> pd.DataFrame:
    s = pd.read_csv(run_dir / "summary.csv")
    return s[COLUMNS].round(4)


def break_even(run_dir: Path) -> dict:
    """Largest swept RTT at which ciar's mean latency is still below base's (linear interp)."""
    res = pd.read_parquet(run_dir / "results.parquet")
    pts = pd.read_csv(run_dir / "points.csv")[["point", "network.rtt_ms"]]
    lat = res.groupby(["point", "policy"])["latency_ms"].mean().unstack()
    lat = pts.set_index("point").join(lat).sort_values("network.rtt_ms")
    rtt, diff = lat["network.rtt_ms"].to_numpy(), (lat["ciar"] - lat["base"]).to_numpy()
    out = {"rtt_ms": rtt.tolist(), "ciar_minus_base_ms": np.round(diff, 3).tolist()}
    if (diff >= 0).all():
        out["break_even_rtt_ms"] = None
        out["verdict"] = "ciar never beats base over the swept RTTs"
    elif (diff < 0).all():
        out["break_even_rtt_ms"] = None
        out["verdict"] = f"ciar beats base at every swept RTT (up to {rtt.max():g} ms)"
    else:
        i = int(np.flatnonzero((diff[:-1] < 0) & (diff[1:] >= 0))[0])
        x = rtt[i] + (rtt[i + 1] - rtt[i]) * (-diff[i]) / (diff[i + 1] - diff[i])
        out["break_even_rtt_ms"] = round(float(x), 1)
        out["verdict"] = f"ciar beats base below {x:.0f} ms RTT"
    return out


# phone roofline points: (memory bandwidth GB/s, fixed ms per step); the shipped assumption is
# (76.8, 2.0). They span ~1-30 ms per device token, around the published bounds below.
SPEEDS = [(8, 4.0), (20, 2.0), (40, 2.0), (76.8, 2.0), (150, 1.0), (400, 0.5), (2000, 0.2)]
PUBLISHED_MS_PER_TOKEN = {"SmolLM2-135M, Snapdragon 8 Elite NPU, ExecuTorch (254 tokens/s)": 3.9,
                          "Llama-3.2-1B 4-bit, Snapdragon 8 Gen 3 CPU": 20.0}  # fmt: skip
PHONE = ["--set", "models.device.hardware=snapdragon-8-gen-3", "--set", "models.device.runtime=npu"]


def device_speed(tau: float, images: int, workers: int) -> pd.DataFrame:
    """Speed-up over base of ciar, code_split and device_only as the phone gets faster, with
    the paper's compute-only accounting (ideal network) and over the 4G link; one row per
    (setting, chip). Device ms per token = device_only's latency / 256."""
    pol = "[{name: base}, {name: ciar, tau: %r}, {name: code_split, cloud_fraction: 0.3}, {name: device_only}]" % tau
    speeds = json.dumps([{"models.device.overrides.mem_bw_gbps": [b for b, _ in SPEEDS],
                          "models.device.overrides.t_fixed_ms": [f for _, f in SPEEDS]}])
    rows = []
    for setting, scenario, extra in (("compute-only", "scenarios/ideal.yaml", PHONE),
                                     ("4g", "scenarios/4g.yaml", [])):  # fmt: skip
        d = OUT / f"device-speed-{setting}"
        ciarsim("run", scenario, "--out", str(d), "--workers", str(workers), "--set", f"workload.images={images}",
                *extra, "--set", f"policies={pol}", "--set", f"zip={speeds}")
        s = pd.read_csv(d / "summary.csv")
        per_token = s[s.policy == "device_only"].set_index("point")["latency_mean_ms"] / 256
        s = s.assign(setting=setting, device_ms_per_token=s.point.map(per_token).round(3))
        rows.append(s[["setting", "device_ms_per_token", "policy", "latency_mean_ms", "speedup_vs_base"]])
    return pd.concat(rows, ignore_index=True).round(4)


def device_speed_md(df: pd.DataFrame) -> str:
    """The device-speed table as markdown: speed-up over base per device ms/token."""
    bounds = "; ".join(f"{k}: {v} ms/token" for k, v in PUBLISHED_MS_PER_TOKEN.items())
    out = ["# Device-speed sensitivity\n",
           "Made by `python experiments/paper_check.py` (step 6). The phone's roofline is swept over "
           "hypothetical chips (memory bandwidth, fixed cost per step); device ms/token = device_only's "
           "latency / 256. The shipped phone cost is an ASSUMPTION; published bounds: " + bounds + ". "
           "Cells: speed-up over base (> 1: faster than cloud-only).\n"]
    for setting, g in df.groupby("setting", sort=False):
        cols = sorted(g.device_ms_per_token.unique(), reverse=True)
        out += [f"## {setting}\n", "| policy | " + " | ".join(f"{c:.2f} ms/token" for c in cols) + " |",
                "|---|" + "---|" * len(cols)]
        for pol, h in g.groupby("policy", sort=False):
            v = h.set_index("device_ms_per_token")["speedup_vs_base"]
            out.append(f"| {pol} | " + " | ".join(f"{v[c]:.2f}x" for c in cols) + " |")
        out.append("")
    return "\n".join(out)


def network_steps(tau: float, images: int, workers: int) -> dict:
    """Steps 4 and 6: the RTT sweeps (break_even.json) and the device-speed sweep, at ciar's
    ``tau``; what a change to the link model or the phone's costs makes stale."""
    common, imgs = ["--workers", str(workers)], ["--set", f"workload.images={images}"]
    rtts = "[0, 5, 10, 20, 40, 70, 100, 150, 200]"
    pol = "[{name: base}, {name: ciar, tau: %r}]" % tau
    for name, scenario in (("rtt-ideal-hardware", "scenarios/ideal.yaml"),
                           ("rtt-4g-phone", "scenarios/4g.yaml")):  # fmt: skip
        extra = ["--set", "network.capacity=constant", "--set", "network.uplink_mbps=11.2",
                 "--set", "network.downlink_mbps=13.9"] if "ideal" in scenario else []  # fmt: skip
        ciarsim("run", scenario, "--out", str(OUT / name), *common, *imgs, *extra,
                "--set", f"policies={pol}", "--set", f"sweep={{network.rtt_ms: {rtts}}}")
    be = {name: break_even(OUT / name) for name in ("rtt-ideal-hardware", "rtt-4g-phone")}
    (OUT / "break_even.json").write_text(json.dumps(be, indent=2))
    write_speed(device_speed(tau, images, workers))
    return be


def write_speed(df: pd.DataFrame) -> None:
    df.to_csv(OUT / "device_speed.csv", index=False)
    (OUT / "device-speed.md").write_text(device_speed_md(df))


PARITY_MARGIN = 0.03
PARITY_POLICIES = {"ciar": ("ciar", "interval"), "gated-entropy": ("gated", "entropy"),
                   "gated-random": ("gated", "random")}  # fmt: skip


def _decode_quality(policy, workload, models_cfg, seed, models) -> tuple[np.ndarray, np.ndarray]:
    """Per test image: caption consistency and sequential cloud passes."""
    from ciarsim.policies import get_decoder

    ts = get_decoder(policy.name)(policy, workload, models_cfg, seed, models=models)
    cc = np.asarray(ts.meta["quality"]["caption_consistency"], dtype=np.float64)
    return cc, np.array([ts.image(i).cloud_passes for i in range(len(ts.images))], dtype=np.float64)


def parity_budget(images: int, *, margin: float = PARITY_MARGIN, calibration_images: int = 32, seed: int = 0,
                  models_cfg=None, models=None, token_grid: int = 16, grid: int = 49, reps: int = 1000,
                  policies: dict | None = None, rho: float = 0.06) -> dict:
    """Lowest cloud-pass share (% of base's) with caption consistency >= base's - ``margin``.

    Each policy's tau runs over ``grid`` quantiles of its signal's scores on ``calibration_images``
    validation prompts (send rates 1%..99%: monotone in tau); bisection over that grid evaluates
    ``images`` test prompts per point. The interval resamples the test prompts (``reps`` times) and
    takes, per resample, the lowest share among the evaluated points that meet the margin."""
    from ciarsim.policies.calibrate import signal_thresholds
    from ciarsim.scenario.schema import BasePolicy, CiarPolicy, GatedPolicy, ModelsConfig, WorkloadConfig

    models_cfg = models_cfg or ModelsConfig()
    test = WorkloadConfig(images=images, token_grid=token_grid)
    base_cc, base_passes = _decode_quality(BasePolicy(name="base"), test, models_cfg, seed, models)
    rates = np.linspace(0.01, 0.99, grid)
    rng = np.random.default_rng(seed)
    boot = [rng.integers(0, images, images) for _ in range(reps)]
    out = {"margin": margin, "test_images": images, "calibration_images": calibration_images,
           "base_caption_consistency": round(float(base_cc.mean()), 4), "policies": {}}
    for label, (name, signal) in (policies or PARITY_POLICIES).items():
        taus = signal_thresholds([signal], list(rates), WorkloadConfig(images=calibration_images, token_grid=token_grid),
                                 models_cfg, seed, rho=rho, models=models)[signal]  # validation prompts
        points: dict[int, tuple] = {}

        def evaluate(i: int) -> bool:
            if i not in points:
                pol = (CiarPolicy(name="ciar", tau=taus[i], rho=rho) if name == "ciar"
                       else GatedPolicy(name="gated", signal=signal, tau=taus[i], rho=rho))
                points[i] = _decode_quality(pol, test, models_cfg, seed, models)
            cc = points[i][0]
            return cc.mean() >= base_cc.mean() - margin

        lo, hi = 0, grid - 1  # invariant once checked: lo fails, hi passes
        if not evaluate(hi):
            lo = hi  # parity not reached even at the highest send rate
        elif evaluate(lo):
            hi = lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if evaluate(mid) else (mid, hi)

        def share(i, idx=slice(None)):
            return 100.0 * points[i][1][idx].sum() / base_passes[idx].sum()

        def budget(idx=slice(None)):
            ok = [share(i, idx) for i, (cc, _) in points.items()
                  if cc[idx].mean() >= base_cc[idx].mean() - margin]
            return min(ok) if ok else np.nan

        b = budget()
        bs = np.array([budget(idx) for idx in boot])
        ci = [round(float(x), 2) for x in np.nanpercentile(bs, [2.5, 97.5])] if np.isfinite(bs).any() else None
        out["policies"][label] = {
            "parity_budget_pct": None if np.isnan(b) else round(float(b), 2), "ci95": ci,
            "resamples_without_parity": int(np.isnan(bs).sum()),
            "points": [{"send_rate": round(float(rates[i]), 4), "tau": taus[i], "cloud_pass_pct": round(share(i), 2),
                        "caption_consistency": round(float(cc.mean()), 4)} for i, (cc, _) in sorted(points.items())]}
    first = out["policies"][next(iter(out["policies"]))]
    return {"parity_budget_pct": first["parity_budget_pct"], "ci95": first["ci95"], **out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--calibration-images", type=int, default=32)
    ap.add_argument("--curve-images", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--parity-images", type=int, default=64, help="test prompts per parity-bisection point")
    ap.add_argument("--parity-only", action="store_true", help="only the parity budgets (parity.json)")
    ap.add_argument("--network-only", action="store_true",
                    help="only the RTT and device-speed sweeps (steps 4 and 6), at ciar's tau in scenarios/4g.yaml")
    ap.add_argument("--update-scenarios", action="store_true",
                    help="write the calibrated table taus into scenarios/*.yaml (after retraining the models)")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if a.network_only:
        tau = next(float(p["tau"]) for p in yaml.safe_load(Path("scenarios/4g.yaml").read_text())["policies"]
                   if p["name"] == "ciar")
        print(json.dumps(network_steps(tau, a.images, a.workers), indent=2))
        return
    parity = parity_budget(a.parity_images, calibration_images=a.calibration_images)
    (OUT / "parity.json").write_text(json.dumps(parity, indent=2))
    print(json.dumps({k: (v["parity_budget_pct"], v["ci95"]) for k, v in parity["policies"].items()}))
    if a.parity_only:
        return
    taus = calibrate(a.calibration_images)
    if a.update_scenarios:
        print("updated taus in", ", ".join(str(p) for p in update_scenarios(taus["table"])) or "no scenario")
    common = ["--workers", str(a.workers)]
    images = ["--set", f"workload.images={a.images}"]
    sets = [x for o in tau_overrides(taus["table"]) for x in ("--set", o)]
    ciarsim("run", "scenarios/ideal.yaml", "--out", str(OUT / "ideal"), *common, *images, *sets)
    table = paper_table(OUT / "ideal")
    table.to_csv(OUT / "summary.csv", index=False)
    zip_group = {f"policies.gated-{s}.tau": taus["curve"][s] for s in SIGNALS}
    zip_group["policies.ciar.tau"] = taus["curve"]["interval"]
    ciarsim("run", "scenarios/ideal.yaml", "--out", str(OUT / "thresholds"), *common,
            "--set", f"workload.images={a.curve_images}", "--set", "zip=" + json.dumps([zip_group]),
            "--set", "policies=[{name: base}, " + ", ".join(
                f"{{name: gated, signal: {s}, k: 8}}" for s in SIGNALS) + ", {name: ciar}]")  # fmt: skip
    curve = pd.read_csv(OUT / "thresholds" / "summary.csv")
    curve.to_csv(OUT / "thresholds.csv", index=False)
    be = network_steps(taus["table"]["interval"], a.images, a.workers)
    print(table.to_string(index=False))
    print(json.dumps(be, indent=2))


if __name__ == "__main__":
    main()
