"""Validate the simulator's timing against a real TCP stack: ``reports/validation/``.

    sudo python experiments/validation.py --mahimahi PATH/TO/mahimahi/traces [--images 3] [--reps-impaired 2] [--parallel 3] [--alone-rtt 10]
    python experiments/validation.py --mahimahi ... --analyse-only   # re-simulate + redraw from saved runs
    python experiments/validation.py --redraw                        # tables, figures, page only

Grid (docs/validation.md): RTT 10/40/80/150 ms x uplink 1/5/20 Mbps (downlink 20 Mbps) x {clean,
exponential jitter of mean 5 ms per one-way packet + 1% loss} x {constant link, the Mahimahi
TMobile-LTE-short and Verizon-LTE-short traces rescaled to the uplink / downlink mean}
(https://github.com/ravinet/mahimahi/tree/master/traces; trace points are skipped when
``--mahimahi`` is not given or lacks them) x the policies of ``experiments/validation.yaml``.
Each network point is one ``ciarsim emulate`` session (``ciarsim.emulate.emulate_scenario``) over
the first ``--images`` test images, an impaired point ``--reps-impaired`` times with different relay
seeds (``<out>/points/<point>/rep<r>/`` for r > 0); sessions already on disk are reused (``--force``
redoes them). The analysis re-simulates every point with the simulator's link model as it was
before this validation (``before``: 40-byte headers, no TCP window), as it is now (``after``) and
with the kernel-TCP rule options (``MODELS``), with drawn losses and with the losses each emulated
session saw replayed (``-matched``, from its ``losses.csv``; ``-net`` also takes the hosts'
turnaround excess out of the emulated latency, from its ``messages.csv``); writes ``points.csv``,
``summary.csv`` (median and p95 over points of the absolute relative error of the per-point
median and p95 latency, overall, per policy, per grid half; ``after-expected`` against the
simulator's expected median, ``noise-floor`` the simulator against itself at the emulated sample
size, ``matched-noise-floor`` the same under the emulated losses), ``calibration.csv`` and
``pit.csv`` (where each emulated image falls among 20 simulated draws), ``recovery.csv`` (the
kernel's wait before resending each lost segment), ``windows.csv`` (the kernel's largest
back-to-back burst per clean point), ``table.md``, the figures and the page, and
records the machine load sampled during the emulation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ciarsim.emulate.api import compare, draw_seed, emulate_scenario  # noqa: E402
from ciarsim.runner import store  # noqa: E402
from ciarsim.runner.run import plan_jobs  # noqa: E402
from ciarsim.runner.trace_cache import TraceCache  # noqa: E402
from ciarsim.scenario.loader import load_scenario  # noqa: E402
from ciarsim.sim import tcp  # noqa: E402
from ciarsim.emulate.losses import DIRECTIONS, loss_script, message_times, segment_kind  # noqa: E402
from ciarsim.sim.world import World, simulate  # noqa: E402
from ciarsim.trace import TraceSet  # noqa: E402

BASE = ROOT / "experiments" / "validation.yaml"
RTTS, UPLINKS, DOWNLINK = (10, 40, 80, 150), (1, 5, 20), 20
TRACES = ("TMobile-LTE-short", "Verizon-LTE-short")
IMPAIRED = {"jitter_ms": 5.0, "loss_rate": 0.01}
CACHE = ROOT / ".cache" / "ciarsim" / "traces"
# the link model before this validation (ciarsim's defaults until then); "after" = today's
# defaults (network.tcp: linux, every loss waits Linux's RTO); "after-rack-aimd" = with the two
# kernel rules the loss-matched comparison pointed to (network.tcp_recovery: rack, Linux's
# RACK-TLP; network.tcp_window: aimd, slow start until the first loss, then congestion avoidance,
# and the window cut in the round a loss happens); "-matched": the simulator replays, on impaired points, the losses each emulated
# session saw, message by message (``losses.csv``, ciarsim.emulate.losses) instead of drawing its
# own: the model's timing under the same losses, free of the sampling noise of which messages
# lose; "srtt": the RTO counted from the kernel's smoothed RTT (network.tcp_rto_rtt: srtt)
RACK, AIMD, SRTT = "network.tcp_recovery=rack", "network.tcp_window=aimd", "network.tcp_rto_rtt=srtt"
MODELS = {"before": ["network.packet_header_bytes=40", "network.tcp=none"], "after": [],
          "after-rack-aimd": [RACK, AIMD], "after-matched": [], "after-rack-matched": [RACK],
          "after-rack-aimd-matched": [RACK, AIMD], "after-rack-aimd-srtt-matched": [RACK, AIMD, SRTT]}
MATCHED = tuple(m for m in MODELS if m.endswith("-matched"))
# "matched-noise-floor": FLOOR_OF's simulator against itself with the same losses and other jitter
# draws: what a perfect model would score against the emulator under matched losses
FLOOR_OF = "after-rack-aimd-matched"
# the models of the headline table, in order (with those ``_derived`` adds)
HEADLINE = ("before", "after-rack-aimd", "after", "after-expected", "noise-floor")
MATCHED_ROWS = (*(x for m in MATCHED for x in (m, f"{m}-net")), "matched-noise-floor")
# impaired points: the simulator's expectation pools replications EXPECT_FROM .. +EXPECT_REPS - 1
# (draws disjoint from those of the emulated replications and of the noise floor's)
EXPECT_FROM, EXPECT_REPS = 100, 20
NOISE_FROM = 50  # the noise floor's simulator replications: NOISE_FROM .. NOISE_FROM + reps - 1


def grid(mahimahi: Path | None) -> list[tuple[str, list[str], int]]:
    """(key, overrides, fit half 0/1) of every network point that can run here."""
    caps = [("const", [])]
    for t in TRACES:
        if mahimahi is not None and (mahimahi / f"{t}.up").exists() and (mahimahi / f"{t}.down").exists():
            caps.append((t, ["network.capacity=trace", "network.trace_format=mahimahi",
                             f"network.uplink_trace={mahimahi / t}.up",
                             f"network.downlink_trace={mahimahi / t}.down"]))  # fmt: skip
    out = []
    for cap, cap_over in caps:
        for imp in ("clean", "impaired"):
            for r in RTTS:
                for u in UPLINKS:
                    over = [f"network.rtt_ms={r}", f"network.uplink_mbps={u}",
                            f"network.downlink_mbps={DOWNLINK}", *cap_over]  # fmt: skip
                    if imp == "impaired":
                        over += [f"network.{k}={v}" for k, v in IMPAIRED.items()]
                    half = (RTTS.index(r) + UPLINKS.index(u)) % 2  # a checkerboard over RTT x uplink
                    out.append((f"rtt{r}-up{u}-{cap}-{imp}", over, half))
    return out


def _load_sampler(path: Path, stop: threading.Event) -> threading.Thread:
    def sample() -> None:
        rows = []
        t0 = time.monotonic()
        while not stop.wait(10.0):
            rows.append({"t_s": round(time.monotonic() - t0, 1), "loadavg_1min": os.getloadavg()[0]})
        store.write_table(pd.DataFrame(rows), path)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    return th


def _impaired(key: str) -> bool:
    return key.endswith("-impaired")


def _reps(key: str, reps_impaired: int) -> int:
    """Emulated replications of a point: clean links are deterministic in the simulator (one
    suffices); an impaired one draws new jitter and losses per replication."""
    return reps_impaired if _impaired(key) else 1


def _rep_dir(out: Path, key: str, rep: int) -> Path:
    return out / "points" / key / (f"rep{rep}" if rep else "")


def _rtt(key: str) -> int:
    return int(key.split("-")[0].removeprefix("rtt"))


def emulate_grid(points, out: Path, images: int, parallel: int, force: bool, reps_impaired: int,
                 alone_rtt_ms: int = 0) -> None:  # fmt: skip
    """Emulate every (point, replication) not on disk yet, ``parallel`` sessions at once; points
    with an RTT of at most ``alone_rtt_ms`` run afterwards one at a time (their exchanges are
    short enough for the testbed's wake-up delays under parallel sessions to show, see
    docs/validation.md)."""
    runs = [(p, r) for p in points for r in range(_reps(p[0], reps_impaired))]
    todo = [(p, r) for p, r in runs if force or not (_rep_dir(out, p[0], r) / "emulation.csv").exists()]
    # an order that spreads the grid (an interrupted run leaves a balanced subset)
    todo.sort(key=lambda pr: (pr[1], hashlib.sha256(pr[0][0].encode()).hexdigest()))
    print(f"{len(points)} points, {len(todo)} sessions to emulate ({images} images each, impaired points "
          f"{reps_impaired} relay seeds, {parallel} at once)")  # fmt: skip
    if not todo:
        return
    stop = threading.Event()
    sampler = _load_sampler(out / "load.csv", stop)
    started = time.monotonic()

    def one(pr) -> None:
        (key, over, _), rep = pr
        sc = load_scenario(BASE, over)
        t = time.monotonic()
        emulate_scenario(sc, _rep_dir(out, key, rep), images=images, cache_dir=CACHE, replication=rep,
                         stream=key)
        print(f"  {key} rep {rep}: {time.monotonic() - t:.0f} s", flush=True)

    together = [pr for pr in todo if _rtt(pr[0][0]) > alone_rtt_ms]
    alone = [pr for pr in todo if _rtt(pr[0][0]) <= alone_rtt_ms]
    if together:
        one(together[0])  # decodes any missing trace once, before the parallel sessions
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, together[1:]))
    for pr in alone:
        one(pr)
    stop.set()
    sampler.join()
    meta = {"images": images, "reps_impaired": reps_impaired, "parallel": parallel,
            "alone_rtt_ms": alone_rtt_ms,
            "points": len(points), "sessions": len(todo),
            "wall_s": round(time.monotonic() - started), "cpus": os.cpu_count()}  # fmt: skip
    store.write_text(out / "run.json", json.dumps(meta, indent=1) + "\n")


def resimulate(points, out: Path, reps_impaired: int, jobs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per emulated image: the emulated latency and the simulated one (same images, same
    replication) under each link model. Per impaired (point, policy), for the ``after`` model:
    the simulator's expected median (pooled over ``EXPECT_REPS`` other replications) and its
    noise floor (the same-size comparison between two sets of simulated replications). Points are
    independent: ``jobs`` processes share them, the rows come back in point order."""
    work = [(p, out, reps_impaired) for p in points]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(_resimulate_point, work))
    else:
        parts = [_resimulate_point(w) for w in work]
    rows = [r for part in parts for r in part[0]]
    extra_rows = [r for part in parts for r in part[1]]
    pit_rows = [r for part in parts for r in part[2]]
    cols = ["model", "point", "policy", "sim_expected_median_ms", "noise_rel_error_median"]
    pit_cols = ["model", "point", "half", "policy", "replication", "image", "pit"]
    return pd.DataFrame(rows), pd.DataFrame(extra_rows, columns=cols), pd.DataFrame(pit_rows, columns=pit_cols)


def _resimulate_point(work) -> tuple[list, list, list]:
    """``resimulate``'s rows of one point (emulated images, expectations, PIT values)."""
    (key, over, half), out, reps_impaired = work
    rows, extra_rows, pit_rows = [], [], []
    emus = {r: _rep_dir(out, key, r) / "emulation.csv" for r in range(_reps(key, reps_impaired))}
    emus = {r: pd.read_csv(p) for r, p in emus.items() if p.exists()}
    if not emus:
        return rows, extra_rows, pit_rows
    for model, extra in MODELS.items():
        sc = load_scenario(BASE, [*over, *extra])
        _, jobs = plan_jobs(sc, out / "parts")
        for j in (j for j in jobs if j.replication == 0):
            psc = j.point.scenario
            first = emus[min(emus)]
            n = int((first["policy"] == j.label).sum())
            tr = TraceSet.load(TraceCache(CACHE).path(j.trace_key))
            tr = TraceSet.from_images([tr.image(i) for i in range(min(n, len(tr)))], tr.meta)
            scripts = {r: _scripts(out, key, r, j.label, psc.network) for r in emus} \
                if model in MATCHED else dict.fromkeys(emus)
            if None in scripts.values() and model in MATCHED and _impaired(key):
                continue  # a session emulated before the relay logged its packets
            runs = {r: _sim(tr, psc, key, j.label, r, scripts[r], log=True) if model in MATCHED
                    else (_sim(tr, psc, key, j.label, r), None) for r in emus}  # fmt: skip
            if model == FLOOR_OF and _impaired(key):  # the same losses, other jitter draws
                for r, emu in emus.items():
                    a = runs[r][0].images["latency_ms"]
                    b = _sim(tr, psc, key, j.label, r, scripts[r], jitter_seed=NOISE_FROM + r)[0].images["latency_ms"]
                    e = emu[emu["policy"] == j.label]
                    rows += [{"model": "matched-noise-floor", "point": key, "half": "fit" if half == 0 else "holdout",
                              "policy": j.label, "replication": r, "image": img, "sim_latency_ms": y,
                              "emu_latency_ms": x, "testbed_rtt_ms": t, "host_excess_ms": np.nan}
                             for img, x, y, t in zip(e["image"], a, b, e["testbed_rtt_ms"])]  # fmt: skip
            for r, emu in emus.items():
                e = emu[emu["policy"] == j.label]
                res, logs = runs[r]
                excess = _host_excess(out, key, r, j.label, res.images, logs) if logs else None
                if excess is not None:  # less the testbed overhead the relay's delays already absorb
                    half_rtt = e["testbed_rtt_ms"].to_numpy() / 2.0
                    excess = [x - n * h for x, n, h in zip(*excess, half_rtt)]
                for i, ((_, er), sim) in enumerate(zip(e.iterrows(), res.images["latency_ms"])):
                    rows.append({"model": model, "point": key, "half": "fit" if half == 0 else "holdout",
                                 "policy": j.label, "replication": r, "image": er["image"],
                                 "sim_latency_ms": sim, "emu_latency_ms": er["emu_latency_ms"],
                                 "testbed_rtt_ms": er["testbed_rtt_ms"],
                                 "host_excess_ms": excess[i] if excess is not None else np.nan})  # fmt: skip
            if model == "before" or model in MATCHED or not _impaired(key):
                continue
            draws = np.array([_sim(tr, psc, key, j.label, EXPECT_FROM + r).images["latency_ms"]
                              for r in range(EXPECT_REPS)])  # fmt: skip
            for r, emu in emus.items():  # where each emulated image falls among the draws
                e = emu[emu["policy"] == j.label]["emu_latency_ms"].to_numpy()
                for i, x in enumerate(e):
                    pit_rows.append({"model": model, "point": key, "half": "fit" if half == 0 else "holdout",
                                     "policy": j.label, "replication": r, "image": i,
                                     "pit": _pit(draws[:, i], x)})  # fmt: skip
            if model == "after":
                extra_rows.append({"model": model, "point": key, "policy": j.label,
                                   **_expectation(tr, psc, key, j.label, sorted(emus), draws)})  # fmt: skip
    return rows, extra_rows, pit_rows


def recovery(points, out: Path, reps_impaired: int) -> pd.DataFrame:
    """Every data segment the relay dropped in the emulated sessions (``losses.csv``), with the
    kernel's measured wait until it was sent again next to the simulator's rules: ``rto_rule_ms``
    (every loss waits the RTO, ``tcp.rto_ms``) and ``rack_rule_ms`` (``tcp.rack_resend_ms``: a
    segment with one behind it is resent 1.25 RTT after it left, a last one waits the RTO)."""
    parts = []
    for key, _, half in points:
        for r in range(_reps(key, reps_impaired)):
            f = _rep_dir(out, key, r) / "losses.csv"
            d = pd.read_csv(f) if f.exists() else pd.DataFrame()
            if len(d):
                parts.append(d.assign(point=key, half="fit" if half == 0 else "holdout", replication=r,
                                      rtt_ms=_rtt(key), kind=segment_kind(d)))  # fmt: skip
    if not parts:
        return pd.DataFrame()
    df = pd.concat(parts, ignore_index=True)
    df["rto_rule_ms"] = [tcp.rto_ms(r) for r in df["rtt_ms"]]
    df["srtt_rule_ms"] = [tcp.rto_ms(tcp.srtt_ms(r, IMPAIRED["jitter_ms"], "srtt")) for r in df["rtt_ms"]]
    df["rack_rule_ms"] = [tcp.rack_resend_ms(0, 2 if k == "inner" else 1, 0.0, r)
                          for k, r in zip(df["kind"], df["rtt_ms"])]  # fmt: skip
    return df


def recovery_table(rec: pd.DataFrame) -> str:
    """Per segment kind and RTT: first transmissions lost and how long the kernel took to resend
    them, against the two rules."""
    lines = ["| lost segment | RTT (ms) | losses | kernel's wait, median [p10, p90] (ms) | RTO rule | "
             "RTO from SRTT | RACK rule |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    first = rec[(rec["attempt"] == 0) & rec["resent_after_ms"].notna()]
    for (kind, rtt), d in first.groupby(["kind", "rtt_ms"]):
        w = d["resent_after_ms"]
        lines.append(f"| {kind} | {rtt} | {len(d)} | {w.median():.0f} [{w.quantile(0.1):.0f}, "
                     f"{w.quantile(0.9):.0f}] | {d['rto_rule_ms'].iloc[0]:.0f} | "
                     f"{d['srtt_rule_ms'].iloc[0]:.0f} | {d['rack_rule_ms'].iloc[0]:.0f} |")
    return "\n".join(lines) + "\n"


def windows(points, out: Path) -> pd.DataFrame:
    """Per clean point: the largest uplink burst the kernel sent back to back at a message's
    start (``first_burst`` in ``messages.csv``: a lower bound on its congestion window then),
    against the pipe (RTT over a full packet's serialisation at the mean rate) and where CUBIC's
    HyStart would end slow start on an idle path: the pipe plus its delay threshold (min RTT / 8
    within 4-16 ms) of queue, at least 16 packets (Linux ``hystart_low_window``). Why
    ``tcp_window: aimd`` does not model HyStart."""
    rows = []
    for key, _, half in points:
        m = None if _impaired(key) else _messages(out, key, 0)
        if m is None or "first_burst" not in m.columns:
            continue
        up = m[m["direction"] == "uplink"]
        rtt, mbps = _rtt(key), float(key.split("-")[1].removeprefix("up"))
        packet_ms = 8.0 * 1500 / (mbps * 1000.0)
        rows.append({"point": key, "half": "fit" if half == 0 else "holdout", "rtt_ms": rtt,
                     "uplink_mbps": mbps, "largest_message_segments": int(up["segments"].max()),
                     "kernel_largest_first_burst": int(up["first_burst"].max()),
                     "pipe_packets": rtt / packet_ms,
                     "hystart_exit_packets": max(16.0, (rtt + min(max(rtt / 8.0, 4.0), 16.0)) / packet_ms)})
    return pd.DataFrame(rows)


def _window_lines(out: Path) -> list[str]:
    f = out / "windows.csv"
    if not f.exists() or f.stat().st_size <= 1:
        return []
    w = pd.read_csv(f)
    capped = w[w["hystart_exit_packets"] < w["largest_message_segments"]]
    ratio = capped["kernel_largest_first_burst"] / capped["hystart_exit_packets"]
    return ["## The kernel's window on clean links", "",
            f"On every clean point (`windows.csv`) the kernel sent uplink bursts of "
            f"{w['kernel_largest_first_burst'].min()}-{w['kernel_largest_first_burst'].max()} segments "
            f"back to back at a message's start (its window was at least that), where the pipe held "
            f"{w['pipe_packets'].min():.0f}-{w['pipe_packets'].max():.0f} packets. On the "
            f"{len(capped)} points whose largest message exceeds where HyStart would end slow start "
            f"on an idle path (the pipe plus its delay threshold, at least 16 packets), the bursts "
            f"were {ratio.min():.1f}-{ratio.max():.1f} times that window: application-limited "
            "messages start on an empty queue, so HyStart's delay test rarely fires, and slow "
            "start runs on. `tcp_window: aimd` therefore keeps slow start until the first loss.", ""]


def _pit(draws: np.ndarray, x: float) -> float:
    """The probability integral transform of an emulated latency ``x`` under the simulator's
    draws of the same image: the share of draws below it (ties count half). A calibrated
    simulator makes these uniform on [0, 1]: mean 0.5, no pile-up at 0 or 1."""
    return float(((draws < x).sum() + 0.5 * (draws == x).sum()) / len(draws))


def calibration(pit: pd.DataFrame, boot: int = 2000) -> pd.DataFrame:
    """Per model and policy (and all policies): the mean PIT of the emulated images of impaired
    points with a 95% interval from a bootstrap over points (images of one point share its
    network: the point is the unit), and the shares of images slower than every simulated
    draw (PIT 1) and faster than every one (PIT 0); each is 1 / (draws + 1) = 4.8% for a
    calibrated simulator with 20 draws."""
    rng = np.random.default_rng(0)
    rows = []
    for model, m in pit.groupby("model", sort=False):
        for policy, d in [("all", m), *m.groupby("policy", sort=False)]:
            per_point = d.groupby("point")["pit"].agg(["sum", "size"])
            s, n = per_point["sum"].to_numpy(), per_point["size"].to_numpy()
            idx = rng.integers(0, len(s), size=(boot, len(s)))
            means = s[idx].sum(axis=1) / n[idx].sum(axis=1)
            rows.append({"model": model, "policy": policy, "points": len(s), "images": int(n.sum()),
                         "mean_pit": float(s.sum() / n.sum()),
                         "ci_low": float(np.quantile(means, 0.025)),
                         "ci_high": float(np.quantile(means, 0.975)),
                         "share_slower_than_all": float((d["pit"] == 1.0).mean()),
                         "share_faster_than_all": float((d["pit"] == 0.0).mean())})  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "policy", "points", "images", "mean_pit", "ci_low",
                                       "ci_high", "share_slower_than_all", "share_faster_than_all"])


def _expectation(tr, sc, key: str, label: str, reps: list[int], draws: np.ndarray) -> dict:
    """The simulator's expected median latency of these images (pooled over its ``draws``,
    replications ``EXPECT_FROM`` on) and its noise floor: the relative error between the pooled
    medians of two disjoint sets of simulated replications the size of the emulated ones."""
    lat = lambda r: _sim(tr, sc, key, label, r).images["latency_ms"].to_numpy()  # noqa: E731
    expect = np.median(draws)
    a = np.median(np.concatenate([lat(r) for r in reps]))
    b = np.median(np.concatenate([lat(NOISE_FROM + i) for i in range(len(reps))]))
    return {"sim_expected_median_ms": float(expect), "noise_rel_error_median": float((a - b) / b)}


def _sim(tr, sc, key: str, label: str, rep: int, scripts: tuple | None = None, log: bool = False,
         jitter_seed: int | None = None):  # fmt: skip
    """The simulator's replication ``rep`` of point ``key``, seeded as ``emulate_scenario``
    seeded the emulated one (``draw_seed``: every point its own draws, every model the same);
    ``scripts``: (uplink, downlink) lost transmissions per message to replay instead of drawing
    losses (``Link.script``); ``jitter_seed``: phone 0's jitter drawn from another seed (all
    else as seeded). With ``scripts``, ``log`` or ``jitter_seed``: ``(records, (uplink, downlink)
    message records)``."""
    seed = draw_seed(sc.seed, f"{key}/0", rep)
    links = []

    def prepare(w: World) -> None:
        phone = w.phone(0)
        if scripts is not None:
            phone.uplink.script, phone.downlink.script = scripts
        phone.uplink.log, phone.downlink.log = [], []
        if jitter_seed is not None:
            phone.uplink.jitter.rng = np.random.default_rng([jitter_seed, 1])
            phone.downlink.jitter.rng = np.random.default_rng([jitter_seed, 2])
        links[:] = [phone.uplink, phone.downlink]

    plain = scripts is None and not log and jitter_seed is None
    res = simulate(tr, workload=sc.workload, models=sc.models, network=sc.network, seed=seed,
                   replication=rep, policy=label, record_segments=False,
                   prepare=None if plain else prepare)  # fmt: skip
    return res if plain else (res, (links[0].log, links[1].log))


def _messages(out: Path, key: str, rep: int) -> pd.DataFrame | None:
    """The emulated session's per-message times (``messages.csv``, or ``messages.csv.gz`` as
    shipped; derived from the relay's ``packets.csv`` and saved next to it when missing), or None
    if neither was kept."""
    d = _rep_dir(out, key, rep)
    if (d / "messages.csv.gz").exists():  # as shipped in reports/validation
        return pd.read_csv(d / "messages.csv.gz")
    if not (d / "messages.csv").exists():
        if not (d / "packets.csv").exists():
            return None
        store.write_table(message_times(pd.read_csv(d / "packets.csv")), d / "messages.csv")
    return pd.read_csv(d / "messages.csv")


def _host_excess(out: Path, key: str, rep: int, label: str, images: pd.DataFrame,
                 logs: tuple[list, list]) -> tuple[list[float], list[float]] | None:  # fmt: skip
    """Per image: how much longer the emulator's hosts took to turn messages around than the
    simulator's compute (ms), and the number of turnarounds: at the cloud, from a request's
    delivery to its answer's first segment; at the device, from an answer's delivery to the
    image's next request; summed over the image's exchanges, both measured at the relay. Only
    for policies with one exchange in flight at a time (request k answered before request k + 1
    leaves); None otherwise or when the session kept no packet log. Each turnaround includes one
    host's receive and send path, which the calibration already took off the relay's delays
    (half the testbed RTT per direction): the caller subtracts that."""
    msgs = _messages(out, key, rep)
    up_s, down_s = logs
    if msgs is None or len(up_s) != len(down_s) or not up_s:
        return None
    m = msgs[msgs["policy"] == label]
    up_e = m[m["direction"] == "uplink"].set_index("message").sort_index()
    down_e = m[m["direction"] == "downlink"].set_index("message").sort_index()
    n = len(up_s)
    if len(up_e) != n or len(down_e) != n:
        return None
    us, ua = np.array([r.send_ms for r in up_s]), np.array([r.arrival_ms for r in up_s])
    ds, da = np.array([r.send_ms for r in down_s]), np.array([r.arrival_ms for r in down_s])
    if (ds < ua - 1e-6).any() or (us[1:] < da[:-1] - 1e-6).any():
        return None  # exchanges overlap: no turnaround to pair
    ue, uo = up_e["first_in_ms"].to_numpy(), up_e["delivered_ms"].to_numpy()
    de, do = down_e["first_in_ms"].to_numpy(), down_e["delivered_ms"].to_numpy()
    image = np.searchsorted(images["start_ms"].to_numpy(), us, side="right") - 1
    srv = (de - uo) - (ds - ua)
    dev = (ue[1:] - do[:-1]) - (us[1:] - da[:-1])
    dev = np.where(image[1:] == image[:-1], dev, 0.0)  # the gap between images is no turnaround
    per = np.zeros(len(images))
    np.add.at(per, image, srv)
    np.add.at(per, image[1:], dev)
    turns = np.zeros(len(images))
    np.add.at(turns, image, 1.0)
    np.add.at(turns, image[1:], (image[1:] == image[:-1]).astype(float))
    return per.tolist(), turns.tolist()


def _scripts(out: Path, key: str, rep: int, label: str, net) -> tuple[list, list] | None:
    """The emulated session's lost transmissions per message of policy ``label`` (uplink,
    downlink), or None if the session has no loss log (emulated before the relay kept one)."""
    d = _rep_dir(out, key, rep)
    if not (d / "losses.csv").exists():
        return None
    losses, streams = pd.read_csv(d / "losses.csv"), pd.read_csv(d / "streams.csv")
    losses, streams = losses[losses["policy"] == label], streams[streams["policy"] == label]
    count = lambda way: int(streams.loc[streams["direction"] == way, "messages"].iloc[0])  # noqa: E731
    payload = net.mtu_bytes - net.packet_header_bytes
    return tuple(loss_script(losses.assign(block=0), 0, way, count(way), payload) for way in DIRECTIONS)


def summarise(per_point: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for model, m in per_point.groupby("model", sort=False):
        groups = [("all", "all", m)] + [("all", h, d) for h, d in m.groupby("half")]
        groups += [(p, "all", d) for p, d in m.groupby("policy", sort=False)]
        for policy, half, d in groups:
            a, b = d["rel_error_median"].abs(), d["rel_error_p95"].abs()
            rows.append({"model": model, "policy": policy, "half": half, "points": len(d),
                         "median_abs_rel_error": a.median(), "p95_abs_rel_error": a.quantile(0.95),
                         "median_abs_rel_error_of_p95": b.median(),
                         "p95_abs_rel_error_of_p95": b.quantile(0.95)})  # fmt: skip
    return pd.DataFrame(rows)


def figures(pp: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    after = pp[pp["model"] == "after"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (col_s, col_e, what) in zip(axes, [("sim_median_ms", "emu_median_ms", "median"),
                                               ("sim_p95_ms", "emu_p95_ms", "p95")]):
        for pol, d in after.groupby("policy", sort=False):
            ax.scatter(d[col_e] / 1000, d[col_s] / 1000, s=12, label=pol, alpha=0.75)
        lo, hi = after[[col_s, col_e]].min().min() / 1000 * 0.8, after[[col_s, col_e]].max().max() / 1000 * 1.2
        ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
        ax.set(xscale="log", yscale="log", xlabel=f"emulated {what} latency per image (s)",
               ylabel=f"simulated {what} latency per image (s)",
               title=f"{what} per point and policy")  # fmt: skip
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "sim_vs_emu.png", dpi=130)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(12, 4.5))
    order = pp[pp["model"] == "after"][["point", "policy"]].reset_index(drop=True)
    for model, mk, label in (("before", "x", "before"), ("after", "o", "after (today's default)"),
                             ("after-rack-aimd-matched", "^", "after-rack-aimd, the emulated losses")):
        d = order.merge(pp[pp["model"] == model], on=["point", "policy"], how="left")
        ax.scatter(np.arange(len(d)), 100 * d["rel_error_median"], s=10, marker=mk, label=label,
                   alpha=0.7)  # fmt: skip
    ax.axhspan(-5, 5, color="green", alpha=0.1, label="±5% target")
    d = pp[pp["model"] == "after"].reset_index(drop=True)
    group = d["point"].str.split("-").str[2:].str.join(" ")  # capacity + impairment
    starts = [i for i in range(len(d)) if i == 0 or group[i] != group[i - 1]]
    for i in starts:
        ax.axvline(i - 0.5, color="grey", lw=0.8)
        ax.text(i + 1, 0.98, group[i].replace("-LTE-short", ""), transform=ax.get_xaxis_transform(),
                fontsize=7, va="top", rotation=90)  # fmt: skip
    ax.set(xlabel="grid point x policy (grouped by link and impairment; within a group by RTT, "
                  "then uplink rate)",
           ylabel="relative error of the median (%)\n(sim - emu) / emu",
           title="Simulator error against the emulator, per point")  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "error_by_point.png", dpi=130)
    plt.close(fig)


def recovery_figure(rec: pd.DataFrame, out: Path) -> None:
    """The kernel's wait before resending each lost segment against the path's RTT, by where
    the segment sat in its message, with the simulator's two rules."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = rec[(rec["attempt"] == 0) & rec["resent_after_ms"].notna()]
    rng = np.random.default_rng(0)  # horizontal spread only, to show the points' density
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for (kind, mk), shift in zip((("single", "o"), ("tail", "s"), ("inner", "^")), (-4, 0, 4)):
        d = first[first["kind"] == kind]
        x = d["rtt_ms"] * (1 + shift / 100) * np.exp(rng.uniform(-0.03, 0.03, len(d)))
        ax.scatter(x, d["resent_after_ms"], s=9, marker=mk, alpha=0.45,
                   label=f"{kind} segment lost ({len(d)})")  # fmt: skip
    r = np.array(sorted(first["rtt_ms"].unique()), dtype=float)
    ax.plot(r, [tcp.rto_ms(x) for x in r], "k-", lw=1.2, label="RTO rule: RTT + 200 ms")
    ax.plot(r, [tcp.rto_ms(tcp.srtt_ms(x, IMPAIRED["jitter_ms"], "srtt")) for x in r], "k:", lw=1.4,
            label="RTO from the kernel's SRTT: + 2 x mean jitter + 40 ms delayed ACK")
    ax.plot(r, (1 + tcp.RACK_REO_WND) * r, "k--", lw=1.2, label="RACK rule (inner): 1.25 RTT")
    ax.set(xscale="log", yscale="log", xlabel="path RTT (ms)",
           ylabel="kernel's wait from the lost send to the resend (ms)",
           title="Loss recovery in kernel TCP (CUBIC), first transmissions lost")  # fmt: skip
    ax.set_xticks(r, [f"{x:.0f}" for x in r])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "recovery.png", dpi=130)
    plt.close(fig)


def table(pp: pd.DataFrame) -> str:
    """Vidur-style: per policy and link kind, the error of the median and p95 latency."""
    a = pp[pp["model"] == "after"].copy()
    a["link"] = a["point"].str.split("-").str[2:-1].str.join("-")
    a["impairment"] = a["point"].str.split("-").str[-1]
    lines = ["| policy | link | impairment | points | median latency (emu, s) | P50 error (%) | "
             "P95 error (%) |", "|---|---|---|---|---|---|---|"]
    for (pol, link, imp), d in a.groupby(["policy", "link", "impairment"], sort=False):
        lines.append(f"| {pol} | {link} | {imp} | {len(d)} | {d['emu_median_ms'].median() / 1000:.2f} | "
                     f"{100 * d['rel_error_median'].abs().median():.1f} | "
                     f"{100 * d['rel_error_p95'].abs().median():.1f} |")
    return "\n".join(lines) + "\n"


def redraw(out: Path) -> None:
    """Tables, figures and the page from the saved ``points.csv`` / ``summary.csv``."""
    pp, summary = pd.read_csv(out / "points.csv"), pd.read_csv(out / "summary.csv")
    store.write_text(out / "table.md", table(pp))
    figures(pp, out)
    rec = _recovery_of(out)
    if len(rec):
        recovery_figure(rec, out)
    store.write_text(out / "validation.md", page(pp, summary, out))


def _recovery_of(out: Path) -> pd.DataFrame:
    """The saved ``recovery.csv`` (empty if none, or no losses were logged)."""
    f = out / "recovery.csv"
    return pd.read_csv(f) if f.exists() and f.stat().st_size > 1 else pd.DataFrame()


def analyse(points, out: Path, reps_impaired: int, jobs: int = 1) -> None:
    per_image, expected, pit = resimulate(points, out, reps_impaired, jobs)
    keys = ["model", "point", "half", "policy"]
    both = pd.concat([per_image, _net_of_host(per_image)], ignore_index=True)
    pp = compare(both.drop(columns=["testbed_rtt_ms", "replication", "host_excess_ms"]))
    pp = pp.merge(both.groupby(keys)["testbed_rtt_ms"].median().reset_index(), on=keys)
    pp = pp.merge(both.groupby(keys)["replication"].nunique().rename("replications").reset_index(),
                  on=keys)  # fmt: skip
    pp = pp.merge(expected, on=["model", "point", "policy"], how="left")
    pp = pd.concat([pp, _derived(pp)], ignore_index=True)
    summary = summarise(pp)
    store.write_table(per_image, out / "images.csv")
    store.write_table(pp, out / "points.csv")
    store.write_table(summary, out / "summary.csv")
    store.write_table(pit, out / "pit.csv")
    rec = recovery(points, out, reps_impaired)
    store.write_table(rec, out / "recovery.csv")
    store.write_table(windows(points, out), out / "windows.csv")
    if len(rec):
        recovery_figure(rec, out)
    store.write_table(calibration(pit), out / "calibration.csv")
    store.write_text(out / "table.md", table(pp))
    figures(pp, out)
    store.write_text(out / "validation.md", page(pp, summary, out))
    print(summary.to_string(index=False))


def _net_of_host(per_image: pd.DataFrame) -> pd.DataFrame:
    """``<model>-net`` rows for the matched models: each emulated image's latency less its
    hosts' turnaround excess over the simulated compute beyond the calibrated testbed overhead
    (``_host_excess``; policies with one exchange in flight at a time): the comparison of the
    network and TCP model alone, with the testbed's process wake-ups at the two ends taken out."""
    d = per_image[per_image["model"].isin(MATCHED) & per_image["host_excess_ms"].notna()]
    return d.assign(model=d["model"] + "-net", emu_latency_ms=d["emu_latency_ms"] - d["host_excess_ms"])


def _derived(pp: pd.DataFrame) -> pd.DataFrame:
    """Two more rows per ``after`` comparison: ``after-expected`` (the emulated median against
    the simulator's expected median; a clean link has one outcome, so there it is ``after``'s) and
    ``noise-floor`` (the simulator against itself at the emulated sample size: the error a
    perfect model would show; 0 on clean links). Median latency only."""
    a = pp[pp["model"] == "after"]
    exp = a["sim_expected_median_ms"].fillna(a["sim_median_ms"])
    ea = a.assign(model="after-expected", sim_median_ms=exp,
                  rel_error_median=(exp - a["emu_median_ms"]) / a["emu_median_ms"],
                  sim_p95_ms=np.nan, rel_error_p95=np.nan)  # fmt: skip
    nf = a.assign(model="noise-floor", rel_error_median=a["noise_rel_error_median"].fillna(0.0),
                  sim_p95_ms=np.nan, rel_error_p95=np.nan)  # fmt: skip
    return pd.concat([ea, nf])


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def page(pp: pd.DataFrame, summary: pd.DataFrame, out: Path) -> str:
    """The results page: headline errors before / after, by half, by policy, by condition."""
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    load = pd.read_csv(out / "load.csv") if (out / "load.csv").exists() else pd.DataFrame()
    a = pp[pp["model"] == "after"].copy()
    a["impaired"] = a["point"].str.endswith("impaired")
    a["rtt"] = a["point"].str.extract(r"rtt(\d+)")[0].astype(int)
    get = lambda m, pol="all", half="all": summary[(summary.model == m) & (summary.policy == pol)  # noqa: E731
                                                  & (summary.half == half)].iloc[0]  # fmt: skip
    lines = [
        "# Simulator vs real kernel TCP: validation results",
        "",
        "Made by `sudo python experiments/validation.py --mahimahi PATH/TO/mahimahi/traces` "
        "(docs/validation.md). Mahimahi traces: https://github.com/ravinet/mahimahi/tree/master/traces "
        "(TMobile-LTE-short, Verizon-LTE-short, rescaled to the grid's rates).",
        "",
        f"- {a['point'].nunique()} network points x {a['policy'].nunique()} policies = {len(a)} "
        f"comparisons; {run.get('images', '?')} test images per (point, policy) and emulated "
        f"replication; clean points 1 replication, impaired points (jitter and loss) "
        f"{run.get('reps_impaired', 1)}; every point and replication draws its own jitter and "
        "losses, in the relay and in the simulator (`ciarsim.emulate.api.draw_seed`), so the "
        "points are independent samples; the simulator replays the same images in the same order.",
    ]
    if run:
        lines.append(f"- emulation wall time {run['wall_s'] / 60:.0f} min for {run.get('sessions', run['points'])} "
                     f"sessions over {run['points']} points, "
                     f"{run['parallel']} sessions at once"
                     + (f" (points with RTT <= {run['alone_rtt_ms']} ms one at a time)" if run.get("alone_rtt_ms") else "")
                     + f", on a {run['cpus']}-vCPU VM shared with other "
                     "jobs; emulator processes at nice -5 and SCHED_FIFO.")  # fmt: skip
    if len(load):
        lines.append(f"- machine load (1-min load average, sampled every 10 s during the emulation): "
                     f"median {load['loadavg_1min'].median():.1f}, max {load['loadavg_1min'].max():.1f} "
                     f"on {run.get('cpus', 2)} vCPUs.")  # fmt: skip
    lines.append(f"- testbed round-trip overhead calibrated away per session (median "
                 f"{a['testbed_rtt_ms'].median():.1f} ms, range {a['testbed_rtt_ms'].min():.1f}-"
                 f"{a['testbed_rtt_ms'].max():.1f} ms).")  # fmt: skip
    lines += ["", "## Headline: absolute relative error of the simulator, over points", "",
              "| model | half | comparisons | median of median-latency error | p95 | median of p95-latency "
              "error | p95 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    opt = lambda x: "—" if pd.isna(x) else _pct(x)  # noqa: E731
    for m in HEADLINE:
        for half in ("fit", "holdout", "all"):
            if not ((summary.model == m) & (summary.policy == "all") & (summary.half == half)).any():
                continue  # a partial grid (--only) may lack a half
            r = get(m, half=half)
            lines.append(f"| {m} | {half} | {r.points} | {_pct(r.median_abs_rel_error)} | "
                         f"{_pct(r.p95_abs_rel_error)} | {opt(r.median_abs_rel_error_of_p95)} | "
                         f"{opt(r.p95_abs_rel_error_of_p95)} |")
    lines += ["", "Targets: median <= 5%, p95 <= 10%. `before`: the link model before this validation "
              "(40-byte headers, no TCP window, a fixed 200 ms per loss); `after`: today's default "
              "(`network.tcp: linux`, every loss waits the RTO); `after-rack`: with Linux's RACK-TLP "
              "loss recovery (`network.tcp_recovery: rack`); `after-rack-aimd`: and the window "
              "rule `network.tcp_window: aimd` (slow start until the first loss, then congestion "
              "avoidance, a loss cutting the window in the round it happens); `srtt`: the RTO counted from the kernel's smoothed "
              "RTT (`network.tcp_rto_rtt: srtt`). `-matched`: the simulator replays the losses "
              "the emulated session saw, message by message, instead of drawing its own (no "
              "sampling noise from which messages lose); `-net`: against the emulated latency less "
              "the testbed hosts' turnaround excess (policies with one exchange in flight). "
              "`after-expected`: the emulated median against "
              "the simulator's expected median (its median pooled over "
              f"{EXPECT_REPS} other jitter and loss draws of the same images; on clean links the "
              "simulator has one outcome). `noise-floor`: the simulator against itself, two disjoint "
              "sets of draws of the emulated size: the error a perfect model would show here from "
              "sampling alone (0 on clean links).", "",
              "## By condition (after)", "",
              "| impairment | RTT (ms) | comparisons | median abs error | p95 abs error | mean signed error |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for (imp, rtt), d in a.groupby(["impaired", "rtt"]):
        e = d["rel_error_median"]
        lines.append(f"| {'jitter + 1% loss' if imp else 'clean'} | {rtt} | {len(d)} | "
                     f"{_pct(e.abs().median())} | {_pct(e.abs().quantile(0.95))} | {_pct(e.mean())} |")
    imp = a[a["impaired"]]
    e, nf = imp["rel_error_median"], imp["noise_rel_error_median"]
    ex = (imp["sim_expected_median_ms"] - imp["emu_median_ms"]) / imp["emu_median_ms"]
    lines += ["", f"Impaired points: abs error of the median {_pct(e.abs().median())} (median) / "
              f"{_pct(e.abs().quantile(0.95))} (p95); against the simulator's expected median "
              f"{_pct(ex.abs().median())} / {_pct(ex.abs().quantile(0.95))}; the noise floor at this "
              f"sample size {_pct(nf.abs().median())} / {_pct(nf.abs().quantile(0.95))}. Mean signed "
              f"error against the expectation {_pct(ex.mean())} (negative: the simulator is faster "
              "than the kernel).", ""]  # fmt: skip
    lines += _calibration_lines(out)
    lines += _matched_lines(pp, summary)
    lines += _recovery_lines(out)
    lines += _window_lines(out)
    lines += ["## By policy", "",
              "| policy | model | median abs error | p95 abs error |", "|---|---|---|---|"]  # fmt: skip
    for pol in a["policy"].unique():
        for m in ("before", "after"):
            r = get(m, pol)
            lines.append(f"| {pol} | {m} | {_pct(r.median_abs_rel_error)} | {_pct(r.p95_abs_rel_error)} |")
    lines += ["", "## Per policy, link and impairment (Vidur-style)", "", table(pp), "",
              "![simulated vs emulated](sim_vs_emu.png)", "", "![error by point](error_by_point.png)", "",
              "Files: `points.csv` (per point, policy and model), `images.csv` (per image), "
              "`summary.csv`, `load.csv`, `points/<point>/` (the emulator's own outputs).", ""]  # fmt: skip
    return "\n".join(lines)


def _matched_lines(pp: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Impaired points under the emulated losses: each model's error with the losses matched
    and net of the hosts' turnaround, and the hosts' excess per exchange."""
    imp = pp[pp["point"].str.endswith("impaired") & pp["model"].isin(MATCHED_ROWS)]
    if imp.empty:
        return []
    lines = ["## Impaired points under the same losses", "",
             "The simulator replays the losses each emulated session saw (every dropped segment "
             "placed in its message from the relay's packet log: `losses.csv`), so a point's "
             "error is the model's, not which messages happened to lose. `-net`: against the "
             "emulated latency less the testbed hosts' turnaround excess (below).", "",
             "| model | half | comparisons | median abs error | p95 abs error | mean signed error |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for m in MATCHED_ROWS:
        for half in ("fit", "holdout", "all"):
            d = imp[(imp["model"] == m) & ((imp["half"] == half) | (half == "all"))]
            if len(d):
                e = d["rel_error_median"]
                lines.append(f"| {m} | {half} | {len(d)} | {_pct(e.abs().median())} | "
                             f"{_pct(e.abs().quantile(0.95))} | {_pct(e.mean())} |")
    return [*lines, ""]


def _recovery_lines(out: Path) -> list[str]:
    rec = _recovery_of(out)
    if rec.empty:
        return []
    return ["## Loss recovery as the kernel did it", "",
            "Every first transmission the relay dropped, with the time until the kernel sent it "
            "again (both at the relay; `recovery.csv`): a `single` segment was a whole message, a "
            "`tail` the last of a longer one (nothing behind it to trigger fast recovery), an "
            "`inner` one had segments behind it. The RACK rule counts from the segment's "
            "departure; segments queued ahead of it in the relay add their serialisation.", "",
            recovery_table(rec), "![loss recovery](recovery.png)", ""]


def _calibration_lines(out: Path) -> list[str]:
    """The distributional check: where each emulated image of an impaired point falls among
    the simulator's draws of it (``calibration.csv``)."""
    if not (out / "calibration.csv").exists():
        return []
    cal = pd.read_csv(out / "calibration.csv")
    if cal.empty:  # no impaired point in this run (e.g. --only with clean points)
        return []
    lines = ["## Distributional check (impaired points)", "",
             "Each emulated image of an impaired point against the simulator's "
             f"{EXPECT_REPS} draws of the same image (other jitter and loss draws): the PIT is the "
             "share of draws faster than the kernel. A calibrated simulator gives a mean PIT of 0.5 "
             f"and {_pct(1 / (EXPECT_REPS + 1))} of images beyond every draw on each side; a mean "
             "above 0.5 means the kernel is slower than the simulator (the simulator is "
             "optimistic). 95% intervals from a bootstrap over points.", "",
             "| model | policy | points | images | mean PIT [95% CI] | slower than every draw | "
             "faster than every draw |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in cal.itertuples():
        lines.append(f"| {r.model} | {r.policy} | {r.points} | {r.images} | {r.mean_pit:.2f} "
                     f"[{r.ci_low:.2f}, {r.ci_high:.2f}] | {_pct(r.share_slower_than_all)} | "
                     f"{_pct(r.share_faster_than_all)} |")
    return [*lines, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mahimahi", type=Path, default=None, help="folder of Mahimahi trace files")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--reps-impaired", type=int, default=1,
                    help="emulated replications (relay seeds) of each impaired point")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--alone-rtt", type=int, default=0, metavar="MS",
                    help="emulate points with RTT <= MS one session at a time, after the others")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "validation")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--analyse-only", action="store_true")
    ap.add_argument("--redraw", action="store_true", help="only tables, figures and the page")
    ap.add_argument("--only", default="", help="comma-separated point keys (debugging)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="processes re-simulating the points in the analysis")
    a = ap.parse_args()
    if a.redraw:
        redraw(a.out)
        return
    points = grid(a.mahimahi)
    if a.only:
        points = [p for p in points if p[0] in a.only.split(",")]
    if not a.analyse_only:
        emulate_grid(points, a.out, a.images, a.parallel, a.force, a.reps_impaired, a.alone_rtt)
    analyse(points, a.out, a.reps_impaired, a.jobs)


if __name__ == "__main__":
    main()
