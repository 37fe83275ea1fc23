"""The world: one SimPy environment, the shared cloud, and per-device compute and links; and the
replay of decode traces through it.

``simulate`` builds one ``World`` and replays every image of a ``TraceSet``:

- arrivals per ``ArrivalConfig``: ``closed_loop`` gives ``devices`` phones the images
  round-robin (image k to phone k mod devices), each phone running its images back to back with
  ``think_time_ms`` between them, all starting at t = 0; ``poisson`` starts image k at the k-th
  point of a Poisson process of ``rate_per_s``, each image on its own phone;
- each image's ops in order: OP_DEVICE -> the phone's compute; OP_CLOUD -> uplink message (bytes
  from ``ciarsim.sim.payload``) -> the cloud's batching server -> downlink message.

Randomness: every generator is ``np.random.default_rng([seed, replication, component, index])``
with ``component`` from ``COMPONENTS`` and ``index`` the phone; nothing is global, so two worlds
in one process give identical results. Units: ms, bytes.
"""

from __future__ import annotations

import numpy as np
import simpy

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import ModelsConfig, NetworkConfig, WorkloadConfig
from ciarsim.sim.capacity import (
    CapacityTable, ConstantCapacity, RandomCapacity, link_tables,
)  # fmt: skip
from ciarsim.sim.cloud import CloudServer
from ciarsim.sim.costs import CostModel, validate_names
from ciarsim.sim.device import Device
from ciarsim.sim.link import Link
from ciarsim.sim.payload import PayloadSizer
from ciarsim.sim.records import (
    LANE_CLOUD, LANE_CLOUD_QUEUE, LANE_DEVICE, LANE_DOWNLINK, LANE_UPLINK, Recorder, SimRecords,
)  # fmt: skip
from ciarsim.trace import OP_DEVICE, SOURCE_CLOUD_RESAMPLED, TraceSet

COMPONENTS = {
    "arrivals": 1,
    "uplink-jitter": 2, "uplink-loss": 3, "uplink-capacity": 4, "uplink-offset": 5,
    "downlink-jitter": 6, "downlink-loss": 7, "downlink-capacity": 8, "downlink-offset": 9,
}  # fmt: skip


class Phone:
    """One device: compute plus its two link directions."""

    def __init__(self, device: Device, uplink: Link, downlink: Link):
        self.device, self.uplink, self.downlink = device, uplink, downlink


class World:
    """Everything one replay owns: env, cloud, phones, RNG seeds, records."""

    def __init__(
        self,
        *,
        workload: WorkloadConfig,
        models: ModelsConfig,
        network: NetworkConfig,
        seed: int,
        replication: int,
        policy: str,
        tables: tuple[CapacityTable, CapacityTable] | None = None,
        record_segments: bool = True,
    ):
        validate_names(models)
        self.workload, self.models, self.network = workload, models, network
        self.seed, self.replication = seed, replication
        self.env = simpy.Environment()
        cloud_cost = CostModel.from_config(models.cloud, "models.cloud")
        self.device_cost = CostModel.from_config(models.device, "models.device")
        self.cloud = CloudServer(
            self.env, cloud_cost, models.cloud.max_batch, models.cloud.text_tokens,
            models.cloud.cfg_rows,
        )
        self.sizer = PayloadSizer(
            models.payload, cloud_cost.model, network.message_header_bytes, workload.prompt_bytes
        )
        self.tables = tables if tables is not None else link_tables(network)
        self.recorder = Recorder(policy, replication, record_segments)
        self.phones: dict[int, Phone] = {}
        self._bytes: dict[tuple, tuple[int, int]] = {}

    # -- construction -------------------------------------------------------------------------

    def rng(self, component: str, index: int) -> np.random.Generator:
        """The generator of ``component`` for phone ``index`` in this (seed, replication)."""
        return np.random.default_rng([self.seed, self.replication, COMPONENTS[component], index])

    def phone(self, index: int) -> Phone:
        """Phone ``index``, created on first use."""
        p = self.phones.get(index)
        if p is None:
            dev = Device(
                index, self.device_cost, self.models.device.text_tokens, self.models.device.cfg_rows
            )
            p = Phone(dev, self._link("uplink", index), self._link("downlink", index))
            self.phones[index] = p
        return p

    def _link(self, direction: str, index: int) -> Link:
        net = self.network
        jitter = self.rng(f"{direction}-jitter", index) if net.jitter_ms > 0 else None
        loss = self.rng(f"{direction}-loss", index) if net.loss_rate > 0 else None
        return Link.from_config(net, self._capacity(direction, index), jitter, loss)

    def _capacity(self, direction: str, index: int):
        net = self.network
        mbps = net.uplink_mbps if direction == "uplink" else net.downlink_mbps
        if net.capacity == "ideal":
            return None
        if net.capacity == "constant":
            return ConstantCapacity(mbps)
        if net.capacity == "random":
            rng = self.rng(f"{direction}-capacity", index)
            return RandomCapacity(mbps, net.capacity_cv, net.capacity_interval_ms, rng)
        table = self.tables[0] if direction == "uplink" else self.tables[1]
        if net.align_traces:  # both directions at the uplink's offset: one recording, one clock
            offset = self.rng("uplink-offset", index).uniform(0.0, self.tables[0].period_ms)
        else:
            offset = self.rng(f"{direction}-offset", index).uniform(0.0, table.period_ms)
        return table.capacity(offset)

    # -- running ------------------------------------------------------------------------------

    def run(self, traces: TraceSet) -> SimRecords:
        """Replay every image of ``traces`` under this world's arrivals; returns the records."""
        _check_traces(traces, self.workload)
        self._ops = [traces.image(i).ops.tolist() for i in range(len(traces))]
        self._images = traces.images.tolist()
        self._changed = (traces.source == SOURCE_CLOUD_RESAMPLED).sum(axis=1).tolist()
        self._tokens = traces.tokens_per_image
        arrival = self.workload.arrival
        if arrival.kind == "closed_loop":
            for d in range(min(arrival.devices, len(traces))):
                self.env.process(self._closed_loop(d, range(d, len(traces), arrival.devices)))
        else:
            self.env.process(self._poisson(len(traces), arrival.rate_per_s))
        self.env.run()
        meta = {
            "sim_end_ms": float(self.env.now),
            "cloud_iterations": self.cloud.iterations,
            "phones": len(self.phones),
        }
        return self.recorder.frames(meta)

    def _closed_loop(self, d: int, positions: range):
        phone, think = self.phone(d), self.workload.arrival.think_time_ms
        for k, pos in enumerate(positions):
            if k and think > 0:
                yield self.env.timeout(think)
            yield from self._replay(pos, phone)

    def _poisson(self, n: int, rate_per_s: float):
        gaps = self.rng("arrivals", 0).exponential(1000.0 / rate_per_s, n).tolist()
        for pos, gap in enumerate(gaps):
            yield self.env.timeout(gap)
            self.env.process(self._replay(pos, self.phone(pos)))

    def _msg_bytes(self, op: tuple) -> tuple[int, int]:
        key = op[4:9]
        hit = self._bytes.get(key)
        if hit is None:
            hit = self._bytes[key] = (self.sizer.up(*op[4:8]), self.sizer.down(op[8]))
        return hit

    def _replay(self, pos: int, phone: Phone):
        """Replay one image's ops on ``phone`` and record its row (orchestration: long, linear)."""
        env, dev = self.env, phone.device
        keep, segs = self.recorder.keep_segments, self.recorder.segment_rows
        image, d = self._images[pos], dev.index
        t0 = env.now
        dev_ms = up_ms = down_ms = prop_ms = q_ms = c_ms = 0.0
        calls = bytes_up = bytes_down = verified = 0
        for op in self._ops[pos]:
            if op[0] == OP_DEVICE:
                t = env.now
                s, e = yield from dev.compute(env, op[1], op[2], op[3], op[4])
                dev_ms += e - t
                if keep:
                    segs.append((image, d, LANE_DEVICE, s, e, 0))
                continue
            nb_up, nb_down = self._msg_bytes(op)
            ru, req, rd = yield self._cloud_call(phone, op, nb_up, nb_down)
            calls += 1
            bytes_up += nb_up
            bytes_down += nb_down
            verified += op[5]
            up_ms += ru.arrival_ms - ru.send_ms - ru.propagation_ms
            down_ms += rd.arrival_ms - rd.send_ms - rd.propagation_ms
            prop_ms += ru.propagation_ms + rd.propagation_ms
            q_ms += req.start_ms - req.arrival_ms
            c_ms += req.end_ms - req.start_ms
            if keep:
                segs.append((image, d, LANE_UPLINK, ru.send_ms, ru.arrival_ms, nb_up))
                if req.start_ms > req.arrival_ms:
                    segs.append((image, d, LANE_CLOUD_QUEUE, req.arrival_ms, req.start_ms, 0))
                segs.append((image, d, LANE_CLOUD, req.start_ms, req.end_ms, 0))
                segs.append((image, d, LANE_DOWNLINK, rd.send_ms, rd.arrival_ms, nb_down))
        self.recorder.image((
            image, d, t0, env.now, env.now - t0, dev_ms, up_ms, down_ms, prop_ms, q_ms, c_ms,
            calls, bytes_up, bytes_down, verified, self._changed[pos], self._tokens,
        ))  # fmt: skip

    def _cloud_call(self, phone: Phone, op: tuple, nb_up: int, nb_down: int) -> "_Later":
        """Uplink -> cloud -> downlink for one OP_CLOUD row, chained by callbacks: one event
        per message and per cloud iteration, one resumption of the image's process. The
        returned event fires on the downlink's arrival with (uplink, cloud, downlink) records."""
        env, cloud = self.env, self.cloud
        ru = phone.uplink.plan(env.now, nb_up)
        done = _Later(env)

        def served(req) -> None:
            rd = phone.downlink.plan(env.now, nb_down)
            done.fire_after(rd.arrival_ms - env.now, (ru, req, rd))

        def arrived(_event=None) -> None:
            cloud.request(op[1], op[2], op[3], op[4], served)

        delay = ru.arrival_ms - env.now
        if delay > 0:
            env.timeout(delay).callbacks.append(arrived)
        else:
            arrived()
        return done


class _Later(simpy.Event):
    """An event its owner triggers to fire after a delay (how SimPy's ``Timeout`` is built)."""

    def fire_after(self, delay: float, value) -> None:
        self._ok = True
        self._value = value
        self.env.schedule(self, delay=delay)


def _check_traces(traces: TraceSet, workload: WorkloadConfig) -> None:
    if traces.tokens_per_image != workload.tokens_per_image:
        raise ScenarioError(
            f"workload.token_grid: the traces have {traces.tokens_per_image} tokens per image, "
            f"expected token_grid^2 = {workload.tokens_per_image}"
        )


def simulate(
    traces: TraceSet,
    *,
    workload: WorkloadConfig,
    models: ModelsConfig,
    network: NetworkConfig,
    seed: int,
    replication: int,
    policy: str,
    tables: tuple[CapacityTable, CapacityTable] | None = None,
    record_segments: bool = True,
) -> SimRecords:
    """Replay ``traces`` in a fresh world; one row per image, one per op segment.

    ``tables``: pre-loaded uplink/downlink capacity tables for ``capacity: trace`` (else read
    from ``network``'s paths, relative to the current directory). ``record_segments=False``
    skips the timeline rows (faster sweeps).
    """
    world = World(
        workload=workload, models=models, network=network, seed=seed,
        replication=replication, policy=policy, tables=tables, record_segments=record_segments,
    )  # fmt: skip
    return world.run(traces)
