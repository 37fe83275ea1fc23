"""Read a results folder written by ``ciarsim run`` into plain tables (no drawing here).

Required: ``results.parquet`` (one row per image per point per replication), ``points.csv`` (each
point's swept values) and ``scenario.yaml`` (the resolved scenario, embedded in the report).
Optional: ``summary.csv`` (the runner's summary), ``messages.parquet`` (timelines, trace export) and ``samples/<policy>.npz`` (token
maps); a report explains what it skipped when they are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ciarsim.errors import CiarsimError

RESULT_COLUMNS = (
    "point", "point_index", "policy", "replication", "image", "latency_ms", "device_compute_ms",
    "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms", "cloud_compute_ms",
    "cloud_calls", "bytes_up", "bytes_down",
)  # fmt: skip
MESSAGE_COLUMNS = ("point", "policy", "replication", "image", "lane", "start_ms", "end_ms")
SAMPLE_ARRAYS = ("tokens", "source", "u")


@dataclass(frozen=True)
class Results:
    """One results folder, read. ``swept``: the swept parameter paths, in sweep order."""

    root: Path
    results: pd.DataFrame
    points: pd.DataFrame
    scenario_text: str
    messages: pd.DataFrame | None = None
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    summary: pd.DataFrame | None = None  # summary.csv (per point and policy), as the runner wrote it

    @property
    def summary_ci(self) -> pd.DataFrame:
        """The report's summary (``summary_ci.csv``): latency statistics, speed-up, cost and quality
        per (point, policy) with ``*_ci95`` half-widths, swept values first."""
        from ciarsim.report.stats import summary_table  # noqa: PLC0415

        return summary_table(self.results, self.points)

    @property
    def swept(self) -> list[str]:
        return [c for c in self.points.columns if c not in ("point", "point_index")]

    @property
    def policies(self) -> list[str]:
        """Policy labels in the order they first appear (the scenario's order)."""
        return list(dict.fromkeys(self.results["policy"]))

    @property
    def name(self) -> str:
        """The scenario's name (``name:`` in scenario.yaml), else the folder's name."""
        for line in self.scenario_text.splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].strip().strip("'\"") or self.root.name
        return self.root.name


def load_results(results_dir: str | Path) -> Results:
    """Read ``results_dir``; raise CiarsimError naming the path and what was expected."""
    root = Path(results_dir)
    if not root.is_dir():
        raise CiarsimError(f"{root}: no such folder; expected a results folder written by "
                           "`ciarsim run` (results.parquet, points.csv, scenario.yaml)")  # fmt: skip
    if not (root / "results.parquet").is_file():
        raise CiarsimError(f"{root}: not a results folder: results.parquet is missing (expected "
                           "the output folder of `ciarsim run`)")  # fmt: skip
    results = _read_table(root / "results.parquet", RESULT_COLUMNS)
    if results.empty:
        raise CiarsimError(f"{root / 'results.parquet'}: has no rows; expected one row per image")
    points = _read_table(root / "points.csv", ("point", "point_index"))
    scenario = root / "scenario.yaml"
    if not scenario.is_file():
        raise CiarsimError(f"{scenario}: missing; expected the resolved scenario that "
                           "`ciarsim run` writes next to results.parquet")  # fmt: skip
    messages = None
    if (root / "messages.parquet").is_file():
        messages = _read_table(root / "messages.parquet", MESSAGE_COLUMNS)
    summary = None
    if (root / "summary.csv").is_file():
        summary = _read_table(root / "summary.csv", ("point", "policy"))
    return Results(root, results, points.sort_values("point_index", kind="stable"),
                   scenario.read_text(encoding="utf-8"), messages,
                   _read_samples(root / "samples"), summary)  # fmt: skip


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise CiarsimError(f"{path}: missing; expected it in a results folder of `ciarsim run`")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise CiarsimError(f"{path}: cannot be read as a table ({exc})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CiarsimError(f"{path}: lacks columns {', '.join(missing)}; expected a table "
                           "written by `ciarsim run`")  # fmt: skip
    for col in df.columns:  # one string dtype whatever the reader chose
        if df[col].dtype == object or isinstance(df[col].dtype, (pd.StringDtype,
                                                                  pd.CategoricalDtype)):
            df[col] = df[col].astype(str)
    return df


def _read_samples(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """policy slug -> arrays of ``samples/<slug>.npz`` (never unpickles)."""
    out = {}
    for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise CiarsimError(f"{path}: not a readable samples file ({exc})") from exc
        missing = [k for k in SAMPLE_ARRAYS if k not in arrays]
        if missing:
            raise CiarsimError(f"{path}: lacks arrays {', '.join(missing)}; expected tokens, "
                               "source and u as the runner writes them")  # fmt: skip
        out[path.stem] = arrays
    return out


def slug(label: str) -> str:
    """A policy label as a file name (the runner's rule for ``samples/<slug>.npz``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
