"""What a replay produces: plain tuples appended by the processes, two DataFrames at the end.

``images``: one row per image (``IMAGE_COLUMNS``). Times (ms):

- ``latency_ms`` = ``end_ms - start_ms``: from the image's start until every op has completed.
- ``device_compute_ms``: the device ops of the image (including any wait for a busy device).
- ``exposed_wait_ms``: time the image's control thread was blocked on an answer (an op's ``dep``,
  or the answers still outstanding after the last op): network and cloud time NOT hidden behind
  device work. The thread is always either computing or blocked, so the world records it as
  ``latency_ms - device_compute_ms``.
- ``device_wasted_ms``: device busy time of the ops marked ``wasted`` (part of
  ``device_compute_ms``).
- Per exchange, summed over the image's exchanges (busy times): ``uplink_ms`` / ``downlink_ms``
  (queueing behind earlier messages in that direction + serialisation + loss recovery),
  ``rtt_wait_ms`` (propagation: one-way delay + jitter, both directions), ``cloud_queue_ms``
  (waiting to join a batch), ``cloud_compute_ms`` (in the running batch).

For a stop-and-wait trace (a chain: format v1, every ``dep`` DEP_PREV) the image's ops run one
after another, so every millisecond of its life falls in exactly one of ``BREAKDOWN_COLUMNS`` and
they sum to ``latency_ms`` (and ``exposed_wait_ms`` is the sum of the exchange columns). With
overlap (device work during an exchange, several requests in flight) the exchange columns count
each exchange's own time, so the parts can sum to MORE than the latency; ``exposed_wait_ms`` says
how much of it the image actually waited for.

Counts: ``cloud_calls`` (exchanges), ``cloud_calls_wasted`` (exchanges marked ``wasted``: their
answer was thrown away), ``max_in_flight`` (most exchanges of the image in flight at once, from
uplink send to downlink arrival; 1 for a chain), ``bytes_up`` / ``bytes_down`` (message payloads),
``tokens_uploaded`` (token ids sent up, trace ``tokens_up``, summed over exchanges),
``tokens_verified`` (image positions the cloud decided, trace ``decided``, summed over the
exchanges NOT marked wasted; a float column, NaN where any of those exchanges did not record it,
as format-v1 traces do), ``tokens_changed`` (positions whose final token came from a cloud
resample), ``tokens`` (tokens per image).

``messages``: one row per op segment (message or operation) for timelines
(``SEGMENT_COLUMNS``), ``lane`` one of ``LANES``; uplink/downlink segments span send to arrival
(propagation included); a cloud_queue segment appears only where the wait was > 0; ``op`` is the
op's index in the image's trace (an exchange's segments share it), ``wasted`` its trace flag.
Segments of one image may overlap in time when its trace overlaps work.

Energy and cost (``ENERGY_COLUMNS``, computed after the run by ``ciarsim.sim.energy``, which
documents the attribution): ``cloud_gpu_s`` (the image's share of the cloud GPU's busy time, each
batched iteration split equally among its requests), ``energy_device_j`` (device busy time x its
power), ``energy_radio_j`` (the phone's radio: RRC state machine of ``network.radio``, tail
included), ``energy_radio_tail_j`` (the part of it spent in RRC tails), ``energy_cloud_j`` (``cloud_gpu_s`` x the GPU's power), ``cloud_usd`` (``cloud_gpu_s``
at the price per GPU-hour).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

RECORDED_COLUMNS = (
    "policy", "replication", "image", "device", "start_ms", "end_ms", "latency_ms",
    "device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms",
    "cloud_compute_ms", "cloud_calls", "bytes_up", "bytes_down", "tokens_uploaded",
    "tokens_verified", "tokens_changed", "tokens", "device_wasted_ms", "exposed_wait_ms",
    "max_in_flight", "cloud_calls_wasted",
)  # fmt: skip
# Added after the run from the records (ciarsim.sim.energy): the image's fair share of GPU time,
# energies, and the cloud's price of its share.
ENERGY_COLUMNS = ("cloud_gpu_s", "energy_device_j", "energy_radio_j", "energy_radio_tail_j",
                  "energy_cloud_j", "cloud_usd")  # fmt: skip
IMAGE_COLUMNS = RECORDED_COLUMNS + ENERGY_COLUMNS
BREAKDOWN_COLUMNS = (
    "device_compute_ms", "uplink_ms", "downlink_ms", "rtt_wait_ms", "cloud_queue_ms",
    "cloud_compute_ms",
)  # fmt: skip
_INT_COLUMNS = (
    "replication", "image", "device", "cloud_calls", "bytes_up", "bytes_down",
    "tokens_uploaded", "tokens_changed", "tokens", "max_in_flight", "cloud_calls_wasted",
)  # fmt: skip

SEGMENT_COLUMNS = ("image", "device", "lane", "start_ms", "end_ms", "bytes", "op", "wasted")
LANES = ("device", "uplink", "cloud_queue", "cloud", "downlink")
LANE_DEVICE, LANE_UPLINK, LANE_CLOUD_QUEUE, LANE_CLOUD, LANE_DOWNLINK = range(5)
_SEGMENT_DTYPE = np.dtype([
    ("image", "<i8"), ("device", "<i8"), ("lane", "i1"), ("start_ms", "<f8"), ("end_ms", "<f8"),
    ("bytes", "<i8"), ("op", "<i8"), ("wasted", "?"),
])  # fmt: skip


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
        """Append one image row: the ``RECORDED_COLUMNS`` after policy and replication."""
        self.image_rows.append(row)

    def frames(self, meta: dict | None = None) -> SimRecords:
        """Both DataFrames: images sorted by (image, device), segments in event order."""
        return SimRecords(self._images(), self._segments(), dict(meta or {}))

    def _images(self) -> pd.DataFrame:
        cols = RECORDED_COLUMNS[2:]
        rows = sorted(self.image_rows)
        data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
        df = pd.DataFrame(
            {"policy": pd.Series([self.policy] * len(rows), dtype=object),
             "replication": np.full(len(rows), self.replication, dtype=np.int64),
             **{c: np.asarray(data[c], dtype=np.int64 if c in _INT_COLUMNS else np.float64)
                for c in cols}}
        )  # fmt: skip
        return df[list(RECORDED_COLUMNS)]

    def _segments(self) -> pd.DataFrame:
        arr = np.array(self.segment_rows, dtype=_SEGMENT_DTYPE)  # one C pass over the tuples
        data = {c: arr[c] for c in SEGMENT_COLUMNS}
        data["lane"] = pd.Categorical.from_codes(arr["lane"], categories=LANES)
        return pd.DataFrame(data)
