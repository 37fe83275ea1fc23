"""What a replay produces: plain tuples appended by the processes, two DataFrames at the end.

``images``: one row per image (``IMAGE_COLUMNS``). The time columns break the latency down:
``device_compute_ms`` (device ops, including any wait for the device), ``uplink_ms`` /
``downlink_ms`` (queueing behind earlier messages in that direction + serialisation + loss
recovery), ``rtt_wait_ms`` (propagation: one-way delay + jitter, both directions),
``cloud_queue_ms`` (waiting to join a batch), ``cloud_compute_ms`` (in the running batch). An
image's ops run one after another, so every millisecond of its life falls in exactly one of
these lanes and they sum to ``latency_ms`` (contention shows up as queueing inside them).

``messages``: one row per op segment (message or operation) for timelines
(``SEGMENT_COLUMNS``), ``lane`` one of ``LANES``; uplink/downlink segments span send to arrival
(propagation included); a cloud_queue segment appears only where the wait was > 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

IMAGE_COLUMNS = (
    "policy", "replication", "image", "device", "start_ms", "end_ms", "latency_ms",
    "device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms",
    "cloud_compute_ms", "cloud_calls", "bytes_up", "bytes_down", "tokens_verified",
    "tokens_changed", "tokens",
)  # fmt: skip
BREAKDOWN_COLUMNS = (
    "device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms",
    "cloud_compute_ms",
)  # fmt: skip
_INT_COLUMNS = (
    "replication", "image", "device", "cloud_calls", "bytes_up", "bytes_down",
    "tokens_verified", "tokens_changed", "tokens",
)  # fmt: skip

SEGMENT_COLUMNS = ("image", "device", "lane", "start_ms", "end_ms", "bytes")
LANES = ("device", "uplink", "cloud_queue", "cloud", "downlink")
LANE_DEVICE, LANE_UPLINK, LANE_CLOUD_QUEUE, LANE_CLOUD, LANE_DOWNLINK = range(5)


@dataclass
class SimRecords:
    """The result of one replay: per-image rows, per-segment rows, and run facts."""

    images: pd.DataFrame
    messages: pd.DataFrame  # one row per op segment (SEGMENT_COLUMNS)
    meta: dict = field(default_factory=dict)


class Recorder:
    """Collects rows during a run; ``frames`` builds the DataFrames once, at the end."""

    def __init__(self, policy: str, replication: int, segments: bool = True):
        self.policy, self.replication, self.keep_segments = policy, replication, segments
        self.image_rows: list[tuple] = []
        self.segment_rows: list[tuple] = []

    def image(self, row: tuple) -> None:
        """Append one image row: the ``IMAGE_COLUMNS`` after policy and replication."""
        self.image_rows.append(row)

    def frames(self, meta: dict | None = None) -> SimRecords:
        """Both DataFrames: images sorted by (image, device), segments in event order."""
        return SimRecords(self._images(), self._segments(), dict(meta or {}))

    def _images(self) -> pd.DataFrame:
        cols = IMAGE_COLUMNS[2:]
        rows = sorted(self.image_rows)
        data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
        df = pd.DataFrame(
            {"policy": pd.Series([self.policy] * len(rows), dtype=object),
             "replication": np.full(len(rows), self.replication, dtype=np.int64),
             **{c: np.asarray(data[c], dtype=np.int64 if c in _INT_COLUMNS else np.float64)
                for c in cols}}
        )  # fmt: skip
        return df[list(IMAGE_COLUMNS)]

    def _segments(self) -> pd.DataFrame:
        rows = self.segment_rows
        cols = list(zip(*rows)) if rows else [()] * len(SEGMENT_COLUMNS)
        lane = pd.Categorical.from_codes(np.asarray(cols[2], dtype=np.int8), categories=LANES)
        return pd.DataFrame(
            {"image": np.asarray(cols[0], dtype=np.int64),
             "device": np.asarray(cols[1], dtype=np.int64),
             "lane": lane,
             "start_ms": np.asarray(cols[3], dtype=np.float64),
             "end_ms": np.asarray(cols[4], dtype=np.float64),
             "bytes": np.asarray(cols[5], dtype=np.int64)}
        )  # fmt: skip
