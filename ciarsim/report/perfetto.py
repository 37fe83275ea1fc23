"""Chrome / Perfetto trace export of one sweep point and replication (as Vidur does).

The file is the JSON "Trace Event Format": ``{"traceEvents": [...]}`` with one complete event
(``"ph": "X"``, ``ts`` and ``dur`` in microseconds) per operation segment of ``messages.parquet``.
Each (policy, lane) is a process (``pid``; lanes: device, uplink, cloud queue, cloud, downlink)
and each image a thread (``tid``) inside it, named by metadata events (``"ph": "M"``). Open it at
https://ui.perfetto.dev or chrome://tracing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ciarsim import io as store
from ciarsim import __version__
from ciarsim.errors import CiarsimError
from ciarsim.report.load import Results, load_results
from ciarsim.report.timeline import LANE_NAMES, LANE_ORDER


def export_trace_events(results_dir: str | Path, out_file: str | Path,
                        point: str | int | None = None, policy: str | None = None,
                        replication: int = 0) -> Path:  # fmt: skip
    """Write the trace of ``point`` (key or index; default the first), ``policy`` (label; default
    every policy) and ``replication`` to ``out_file``; return its path."""
    res = load_results(results_dir)
    if res.messages is None:
        raise CiarsimError(f"{res.root / 'messages.parquet'}: missing; the trace export needs "
                           "the per-segment table that `ciarsim run` writes")  # fmt: skip
    key = resolve_point(res, point)
    labels = res.policies if policy is None else [resolve_policy(res, policy)]
    reps = sorted(int(r) for r in res.results["replication"].unique())
    if replication not in reps:
        raise CiarsimError(f"replication {replication} is not in {res.root}; it has "
                           f"replications {', '.join(map(str, reps))}")  # fmt: skip
    m = res.messages
    seg = m[(m["point"] == key) & (m["replication"] == replication) & m["policy"].isin(labels)]
    if seg.empty:
        raise CiarsimError(f"{res.root}: no timeline rows for point {key}, replication "
                           f"{replication}; `ciarsim run` records them for the first point only "
                           "unless run with --messages all")  # fmt: skip
    row = res.points[res.points["point"] == key].iloc[0]
    doc = {"traceEvents": trace_events(seg, labels), "displayTimeUnit": "ms",
           "otherData": {"ciarsim": __version__, "scenario": res.name, "point": key,
                         "point_index": int(row["point_index"]), "replication": replication,
                         "params": {p: _plain(row[p]) for p in res.swept}}}  # fmt: skip
    out = Path(out_file)
    store.write_text(out, json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
    return out


def trace_events(seg: pd.DataFrame, labels: list[str]) -> list[dict]:
    """Metadata events naming processes and threads, then one ``X`` event per segment."""
    events: list[dict] = []
    has_device = "device" in seg
    threads = sorted({(int(d), int(i)) for d, i in zip(
        seg["device"] if has_device else [0] * len(seg), seg["image"])})  # fmt: skip
    tid = {t: n + 1 for n, t in enumerate(threads)}
    for pi, label in enumerate(labels):
        for li, lane in enumerate(LANE_ORDER):
            pid = 1 + pi * len(LANE_ORDER) + li
            events.append(_meta("process_name", pid, 0, {"name": f"{label} · {LANE_NAMES[lane]}"}))
            events.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
            for (dev, img), t in tid.items():
                name = f"image {img}" + (f" (device {dev})" if len({d for d, _ in threads}) > 1
                                         else "")  # fmt: skip
                events.append(_meta("thread_name", pid, t, {"name": name}))
    pids = {(lab, lane): 1 + pi * len(LANE_ORDER) + li for pi, lab in enumerate(labels)
            for li, lane in enumerate(LANE_ORDER)}  # fmt: skip
    for r in seg.sort_values(["start_ms", "policy", "image"], kind="stable").itertuples():
        dev = int(r.device) if has_device else 0
        events.append({"name": LANE_NAMES[str(r.lane)], "cat": str(r.policy), "ph": "X",
                       "ts": round(float(r.start_ms) * 1e3, 3),
                       "dur": round(float(r.end_ms - r.start_ms) * 1e3, 3),
                       "pid": pids[(str(r.policy), str(r.lane))], "tid": tid[(dev, int(r.image))],
                       "args": {"image": int(r.image), "device": dev,
                                "bytes": int(getattr(r, "bytes", 0))}})  # fmt: skip
    return events


def _meta(name: str, pid: int, tid: int, args: dict) -> dict:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def resolve_point(res: Results, point: str | int | None) -> str:
    """A point key from a key, an index (int or digits) or None (the first point)."""
    pts = res.points
    if point is None:
        return str(pts["point"].iloc[0])
    if str(point) in set(pts["point"]):
        return str(point)
    if str(point).isdigit() and int(point) in set(pts["point_index"]):
        return str(pts[pts["point_index"] == int(point)]["point"].iloc[0])
    raise CiarsimError(f"point {point!r} is not in {res.root / 'points.csv'}; give a key or an "
                       f"index 0..{len(pts) - 1}")  # fmt: skip


def resolve_policy(res: Results, policy: str) -> str:
    if policy not in res.policies:
        raise CiarsimError(f"policy {policy!r} is not in {res.root / 'results.parquet'}; it has "
                           f"{', '.join(res.policies)}")  # fmt: skip
    return policy


def _plain(v: object) -> object:
    return v.item() if hasattr(v, "item") else v
