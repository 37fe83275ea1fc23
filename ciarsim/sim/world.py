"""The world: one SimPy environment, the shared cloud, and per-device compute and links; and the
replay of decode traces through it.

``simulate`` builds one ``World`` and replays every image of a ``TraceSet``:

- arrivals per ``ArrivalConfig``: ``closed_loop`` gives ``devices`` phones the images
  round-robin (image k to phone k mod devices), each phone running its images back to back with
  ``think_time_ms`` between them, all starting at t = 0; ``poisson`` starts image k at the k-th
  point of a Poisson process of ``rate_per_s``, each image on its own phone;
- each image's ops as a dependency graph (trace format v2, ``ciarsim.trace``): one control
  thread per image issues the ops in list order, first waiting for the op's ``dep`` to complete;
  OP_DEVICE -> the phone's compute (the thread waits for it; one of no steps and no prefill is a
  pure wait, ``join_op``: no device time, no timeline segment); OP_CLOUD -> uplink message (bytes
  from ``ciarsim.sim.payload``) -> the cloud's batching server -> downlink message, while the
  thread moves on at once (several requests of an image may be in flight). The image ends when
  every op has completed. A v1 trace (every ``dep`` DEP_PREV) is a chain: stop and wait.

Randomness: every generator is ``np.random.default_rng([seed, replication, component, index])``
with ``component`` from ``COMPONENTS`` and ``index`` the phone; nothing is global, so two worlds
in one process give identical results. Units: ms, bytes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import simpy

from ciarsim.errors import ScenarioError, TraceFormatError
from ciarsim.scenario.schema import ModelsConfig, NetworkConfig, WorkloadConfig
from ciarsim.sim.capacity import (
    CapacityTable, ConstantCapacity, RandomCapacity, link_tables,
)  # fmt: skip
from ciarsim.sim.cloud import CloudServer
from ciarsim.sim.costs import CostModel, validate_names
from ciarsim.sim.device import Device
from ciarsim.sim.energy import power_w, radio_energy, usd_per_hour
from ciarsim.sim.guard import PercentileGuard
from ciarsim.sim.link import Link
from ciarsim.sim.payload import PayloadSizer
from ciarsim.sim.population import Group, build_groups, draw_groups
from ciarsim.sim.records import (
    LANE_CLOUD, LANE_CLOUD_QUEUE, LANE_DEVICE, LANE_DOWNLINK, LANE_UPLINK, Recorder, SimRecords,
)  # fmt: skip
from ciarsim.trace import (
    DEP_PREV, OP_CLOUD, OP_DEVICE, SOURCE_CLOUD_RESAMPLED, TraceSet, check_deps,
)  # fmt: skip

COMPONENTS = {
    "arrivals": 1,
    "uplink-jitter": 2, "uplink-loss": 3, "uplink-capacity": 4, "uplink-offset": 5,
    "downlink-jitter": 6, "downlink-loss": 7, "downlink-capacity": 8, "downlink-offset": 9,
    "population": 10,
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
        stop_above: tuple[float, float, int] | None = None,
        population: list | None = None,
    ):
        validate_names(models)
        self.stop_above, self.guard = stop_above, None  # see ``simulate``
        self.workload, self.models, self.network = workload, models, network
        self.seed, self.replication = seed, replication
        self.env = simpy.Environment()
        cloud_cost = CostModel.from_config(models.cloud, "models.cloud")
        self.cloud = CloudServer(
            self.env, cloud_cost, models.cloud.max_batch, models.cloud.text_tokens,
            models.cloud.cfg_rows,
        )
        self.sizer = PayloadSizer(
            models.payload, cloud_cost.model, network.message_header_bytes, workload.prompt_bytes
        )
        self.population = list(population or [])  # GroupConfig list (ciarsim.sim.population)
        if tables is None and network.capacity == "trace":
            tables = link_tables(network)
        self.tables = tables  # the scenario network's capacity tables (None: not 'trace')
        self.groups = build_groups(models, network, self.population, tables)
        self._group_of = np.zeros(0, dtype=np.int64)  # group index per phone index (run)
        self.policy = policy  # the label of the policy under test
        self.recorder = Recorder(policy, replication, record_segments)
        self.phones: dict[int, Phone] = {}
        self._bytes: dict[tuple, tuple[int, int]] = {}
        # per image position: device busy ms and GPU share ms; per message: the radio's interval
        self._busy: dict[int, float] = {}
        self._gpu: dict[int, float] = {}
        self._radio: list[float] = []  # flat: (phone, position, start_ms, end_ms, bits_up, bits_down) per burst

    # -- construction -------------------------------------------------------------------------

    def rng(self, component: str, index: int) -> np.random.Generator:
        """The generator of ``component`` for phone ``index`` in this (seed, replication)."""
        return np.random.default_rng([self.seed, self.replication, COMPONENTS[component], index])

    def phone(self, index: int) -> Phone:
        """Phone ``index``, created on first use."""
        p = self.phones.get(index)
        if p is None:
            drawn = index < len(self._group_of)  # before ``run`` (tests): the first group
            g = self.groups[int(self._group_of[index]) if drawn else 0]
            dev = Device(index, g.device_cost, g.device.text_tokens, g.device.cfg_rows)
            p = Phone(dev, self._link("uplink", index, g), self._link("downlink", index, g))
            self.phones[index] = p
        return p

    def _link(self, direction: str, index: int, group: Group) -> Link:
        net = group.network
        jitter = self.rng(f"{direction}-jitter", index) if net.jitter_ms > 0 else None
        loss = self.rng(f"{direction}-loss", index) if net.loss_rate > 0 else None
        return Link.from_config(net, self._capacity(direction, index, group), jitter, loss)

    def _capacity(self, direction: str, index: int, group: Group):
        net, tables = group.network, group.tables
        mbps = net.uplink_mbps if direction == "uplink" else net.downlink_mbps
        if net.capacity == "ideal":
            return None
        if net.capacity == "constant":
            return ConstantCapacity(mbps)
        if net.capacity == "random":
            rng = self.rng(f"{direction}-capacity", index)
            return RandomCapacity(mbps, net.capacity_cv, net.capacity_interval_ms, rng)
        table = tables[0] if direction == "uplink" else tables[1]
        if net.align_traces:  # both directions at the uplink's offset: one recording, one clock
            offset = self.rng("uplink-offset", index).uniform(0.0, tables[0].period_ms)
        else:
            offset = self.rng(f"{direction}-offset", index).uniform(0.0, table.period_ms)
        return table.capacity(offset)

    # -- running ------------------------------------------------------------------------------

    def run(self, traces: TraceSet, group_traces: dict[str, TraceSet] | None = None,
            direct: bool = True) -> SimRecords:  # fmt: skip
        """Replay every image of ``traces`` under this world's arrivals; returns the records.
        ``group_traces``: population groups that run another policy (group name -> its trace
        set of the same prompts): their phones replay that set's image instead. ``direct``:
        allow the event-free replay where it applies (``_run_direct``; it raises
        ``ConcurrentExchanges`` if a trace turns out to need the batching cloud's events)."""
        sets = [(group_traces or {}).get(g.name, traces) for g in self.groups]
        for ts in sets:
            _check_traces(ts, self.workload)
            if not np.array_equal(ts.images, traces.images):
                raise ScenarioError("population: a group's policy was decoded on other prompts than the "
                                    "policy under test; both must come from the same workload")  # fmt: skip
        self.groups = [replace(g, device_cost=g.device_cost.with_plain_head())
                       if ts.meta.get("device_head") == "plain" else g  # its drafter has no Inter-Head
                       for g, ts in zip(self.groups, sets)]  # fmt: skip
        prepared = {id(ts): _prepare(ts) for ts in sets}
        self._by_group = [prepared[id(ts)] for ts in sets]  # (ops, static, changed) per group
        self._images = traces.images.tolist()
        self._tokens = traces.tokens_per_image
        self._where: list[tuple[int, int, int]] = []  # (position, image, phone) of each replay
        arrival = self.workload.arrival
        self._group_of = draw_groups(self.groups, self.population, arrival, len(traces), self.rng)
        if self.stop_above is not None:
            q, limit_ms, cut = self.stop_above
            ordered = arrival.kind != "closed_loop"  # Poisson: images start in position order
            self.guard = PercentileGuard(self.env, len(traces), cut, q, limit_ms, ordered)
        if self._direct_applies(direct, len(traces)):
            end_ms = self._run_direct(range(0, len(traces), arrival.devices))
        else:
            if arrival.kind == "closed_loop":
                for d in range(min(arrival.devices, len(traces))):
                    self.env.process(self._closed_loop(d, range(d, len(traces), arrival.devices)))
            else:
                self.env.process(self._poisson(len(traces), arrival.rate_per_s))
            self.env.run(until=self.guard.stopped if self.guard is not None else None)
            end_ms = self.env.now
        meta = {
            "sim_end_ms": float(end_ms),
            "cloud_iterations": self.cloud.iterations,
            "cloud_busy_ms": float(self.cloud.busy_ms),
            "phones": len(self.phones),
        }
        if self.guard is not None:
            meta["cut_short"] = self.guard.cut_short
        rec = self.recorder.frames(meta)
        self._energy_columns(rec.images)
        return rec

    def _energy_columns(self, df) -> None:
        """Add ``ENERGY_COLUMNS`` to the image rows ``df`` (in place; ``ciarsim.sim.energy``),
        each image at its group's device power and radio; with a population, also ``group``."""
        where = {(img, dev): pos for pos, img, dev in self._where}
        pos = np.array([where[k] for k in zip(df["image"].tolist(), df["device"].tolist())],
                       dtype=np.int64)  # fmt: skip
        n = len(self._images)
        busy = np.zeros(n)
        gpu = np.zeros(n)
        for p, ms in self._busy.items():
            busy[p] = ms
        for p, ms in self._gpu.items():
            gpu[p] = ms
        cloud = self.models.cloud
        r = np.array(self._radio, dtype=np.float64).reshape(-1, 6)
        phone = r[:, 0].astype(np.int64)
        joules, tail = np.zeros(n), np.zeros(n)
        for g, group in enumerate(self.groups):
            mine = self._group_of[phone] == g if len(self.groups) > 1 else slice(None)
            total, tail_g = radio_energy(
                group.radio, phone[mine], r[mine, 1].astype(np.int64), r[mine, 2] / 1000.0,
                r[mine, 3] / 1000.0, r[mine, 4] / 1e6, r[mine, 5] / 1e6, n,
            )  # fmt: skip
            joules += total
            tail += tail_g
        group_of = self._group_of[df["device"].to_numpy(dtype=np.int64)]
        watts = np.array([g.device_power_w for g in self.groups])[group_of]
        gpu_s = gpu[pos] / 1000.0
        price = cloud.usd_per_gpu_hour or usd_per_hour(cloud.hardware)
        df["cloud_gpu_s"] = gpu_s
        df["energy_device_j"] = busy[pos] / 1000.0 * watts
        df["energy_radio_j"] = joules[pos]
        df["energy_radio_tail_j"] = tail[pos]
        df["energy_cloud_j"] = gpu_s * power_w(cloud.hardware, cloud.runtime)
        df["cloud_usd"] = gpu_s / 3600.0 * price
        if self.population:
            df["group"] = np.array([g.name for g in self.groups], dtype=object)[group_of]
            df["group_policy"] = np.array([getattr(g, "policy", None) or self.policy for g in self.population],
                                          dtype=object)[group_of]  # fmt: skip

    def _direct_applies(self, allowed: bool, n: int) -> bool:
        """One phone running the images back to back, no population, no early stop, no timeline
        rows: the only concurrency is inside an image, so time can be advanced without events."""
        a = self.workload.arrival
        return (allowed and a.kind == "closed_loop" and min(a.devices, n) == 1 and not self.population
                and self.guard is None and not self.recorder.keep_segments)  # fmt: skip

    def _run_direct(self, positions: range) -> float:
        """The event-free replay (orchestration: long, linear): the same arithmetic, in the same
        order, as the SimPy processes (``_closed_loop``, ``_replay``, ``_cloud_call``, the cloud's
        iterations), so the records are identical. Valid while at most one exchange is in
        flight, so the cloud serves each request alone; raises ``ConcurrentExchanges`` when a
        request would leave before the previous answer arrived. Returns the end time (ms)."""
        phone, think = self.phone(0), self.workload.arrival.think_time_ms
        dev, cloud = phone.device, self.cloud
        own_ops, static, changed = self._by_group[0]
        now = 0.0
        for k, pos in enumerate(positions):
            if k and think > 0:
                now = now + think
            t0 = now
            self._where.append((pos, self._images[pos], dev.index))
            answers: list = []  # (uplink, cloud, downlink records, op index, wasted) per exchange
            times: list[float] = []  # when each answer arrives
            dev_ms = wasted_ms = busy_ms = 0.0
            bytes_up = bytes_down = 0
            for op in own_ops[pos]:
                w = op[10]
                if w >= 0 and times[w] > now:
                    now = times[w]
                if op[0] == OP_DEVICE:
                    if not op[1] and not op[4]:  # a join
                        continue
                    t = now
                    s = max(now, dev.busy_until)
                    e = s + dev.op_ms(op[1], op[2], op[3], op[4])
                    dev.busy_until = e
                    now = now + (e - now)
                    dev_ms += e - t
                    busy_ms += e - s
                    if op[12]:
                        wasted_ms += e - s
                    continue
                if times and times[-1] > now:
                    raise ConcurrentExchanges
                nb_up, nb_down = self._msg_bytes(op)
                ru = phone.uplink.plan(now, nb_up)
                delay = ru.arrival_ms - now
                at = now + delay if delay > 0 else now
                req = cloud.serve_alone(op[1], op[2], op[3], op[4], at)
                rd = phone.downlink.plan(req.end_ms, nb_down)
                answers.append((ru, req, rd, op[11], op[12]))
                times.append(req.end_ms + (rd.arrival_ms - req.end_ms))
                bytes_up += nb_up
                bytes_down += nb_down
            for at in times:
                if at > now:
                    now = at
            self._image_done(pos, dev.index, t0, now, answers, dev_ms, wasted_ms, busy_ms, bytes_up,
                             bytes_down, static, changed)  # fmt: skip
        return now

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
        """Replay one image's op graph on ``phone`` and record its row (orchestration: long,
        linear). Exchanges run by callbacks (``_cloud_call``); this process is the image's
        control thread: it blocks only on device work and on the answers its ops wait for."""
        env, dev = self.env, phone.device
        keep, segs = self.recorder.keep_segments, self.recorder.segment_rows
        image, d = self._images[pos], dev.index
        t0 = env.now
        self._where.append((pos, image, d))
        if self.guard is not None:
            self.guard.start(pos, t0)
        timeline = _Timeline(image, d, segs).answer if keep else None
        answers: list = []  # the answer event of each exchange, in issue order
        dev_ms = wasted_ms = busy_ms = 0.0
        bytes_up = bytes_down = 0
        own_ops, static, changed = self._by_group[int(self._group_of[d]) if len(self._by_group) > 1 else 0]
        for op in own_ops[pos]:
            w = op[10]  # the exchange whose answer this op waits for, else -1 (see run)
            if w >= 0 and answers[w].callbacks is not None:  # not arrived yet: block
                yield answers[w]
            if op[0] == OP_DEVICE:
                if not op[1] and not op[4]:  # no steps, no prefill: a pure wait (a join)
                    continue
                t = env.now
                s, e = yield from dev.compute(env, op[1], op[2], op[3], op[4])
                dev_ms += e - t
                busy_ms += e - s
                if op[12]:
                    wasted_ms += e - s
                if keep:
                    segs.append((image, d, LANE_DEVICE, s, e, 0, op[11], op[12]))
                continue
            nb_up, nb_down = self._msg_bytes(op)
            answers.append(self._cloud_call(phone, op, nb_up, nb_down, timeline))
            bytes_up += nb_up
            bytes_down += nb_down
        for ev in answers:  # the image is done when every answer has arrived
            if ev.callbacks is not None:
                yield ev
        self._image_done(pos, d, t0, env.now, [ev._value for ev in answers], dev_ms, wasted_ms, busy_ms,
                         bytes_up, bytes_down, static, changed)  # fmt: skip

    def _image_done(self, pos: int, d: int, t0: float, now: float, answers: list, dev_ms: float,
                    wasted_ms: float, busy_ms: float, bytes_up: int, bytes_down: int, static: list,
                    changed: list) -> None:  # fmt: skip
        """Record the row of the image at ``pos`` replayed on phone ``d`` from ``t0`` to ``now``;
        ``answers``: (uplink, cloud, downlink records, op index, wasted) per exchange, in issue order."""
        up_ms = down_ms = prop_ms = q_ms = c_ms = 0.0  # busy times, summed in issue order
        last, most = -1.0, min(len(answers), 1)
        radio, hdr, gpu_ms = self._radio, self.network.packet_header_bytes * 8, 0.0
        for value in answers:
            ru, req, rd, _, _ = value
            gpu_ms += req.gpu_ms
            radio.extend((d, pos, ru.send_ms + ru.queue_ms, ru.arrival_ms - ru.propagation_ms,
                          ru.nbytes * 8 + ru.packets * hdr, 0,
                          d, pos, rd.send_ms + rd.queue_ms + rd.propagation_ms, rd.arrival_ms,
                          0, rd.nbytes * 8 + rd.packets * hdr))  # fmt: skip
            up_ms += ru.arrival_ms - ru.send_ms - ru.propagation_ms
            down_ms += rd.arrival_ms - rd.send_ms - rd.propagation_ms
            prop_ms += ru.propagation_ms + rd.propagation_ms
            q_ms += req.start_ms - req.arrival_ms
            c_ms += req.end_ms - req.start_ms
            if ru.send_ms < last:
                most = 2  # exchanges overlap: count them below
            elif rd.arrival_ms > last:
                last = rd.arrival_ms
        if most > 1:
            most = _most_in_flight(answers)
        uploaded, verified, calls_wasted = static[pos]
        self._busy[pos], self._gpu[pos] = busy_ms, gpu_ms
        latency = now - t0
        exposed_ms = max(latency - dev_ms, 0.0)  # the thread computes or waits, nothing else
        self.recorder.image((
            self._images[pos], d, t0, now, latency, dev_ms, up_ms, down_ms, prop_ms, q_ms, c_ms,
            len(answers), bytes_up, bytes_down, uploaded, verified, changed[pos],
            self._tokens, wasted_ms, exposed_ms, most, calls_wasted,
        ))  # fmt: skip
        if self.guard is not None:
            self.guard.finish(pos, latency)

    def _cloud_call(self, phone: Phone, op: tuple, nb_up: int, nb_down: int, timeline) -> "_Later":
        """Uplink -> cloud -> downlink for one OP_CLOUD row, chained by callbacks: one event per
        message and per cloud iteration. The returned event fires on the downlink's arrival with
        (uplink, cloud, downlink records, op index, wasted); ``timeline`` (if any) is its first
        callback."""
        env, cloud = self.env, self.cloud
        ru = phone.uplink.plan(env.now, nb_up)
        done = _Later(env)
        if timeline is not None:
            done.callbacks.append(timeline)

        def served(req) -> None:
            rd = phone.downlink.plan(env.now, nb_down)
            done.fire_after(rd.arrival_ms - env.now, (ru, req, rd, op[11], op[12]))

        def arrived(_event=None) -> None:
            cloud.request(op[1], op[2], op[3], op[4], served)

        delay = ru.arrival_ms - env.now
        if delay > 0:
            env.timeout(delay).callbacks.append(arrived)
        else:
            arrived()
        return done


class ConcurrentExchanges(Exception):
    """The direct replay met a request leaving while another was in flight."""


def _most_in_flight(answers: list) -> int:
    """Most exchanges in flight at one instant, each from its uplink send to its downlink
    arrival; an answer arriving when another request is sent is not counted with it."""
    marks = []
    for ru, _, rd, _, _ in answers:
        marks += ((ru.send_ms, 1), (rd.arrival_ms, -1))
    marks.sort()  # at equal times -1 (an arrival) before +1 (a send)
    most = now = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    return most


class _Timeline:
    """Timeline rows of one image's exchanges, appended as each answer arrives (event order)."""

    __slots__ = ("image", "device", "segs")

    def __init__(self, image: int, device: int, segs: list):
        self.image, self.device, self.segs = image, device, segs

    def answer(self, event: simpy.Event) -> None:
        """Append the segments of one arrived answer (an event callback)."""
        ru, req, rd, i, wasted = event._value
        image, d, segs = self.image, self.device, self.segs
        segs.append((image, d, LANE_UPLINK, ru.send_ms, ru.arrival_ms, ru.nbytes, i, wasted))
        if req.start_ms > req.arrival_ms:
            queue = (image, d, LANE_CLOUD_QUEUE, req.arrival_ms, req.start_ms, 0, i, wasted)
            segs.append(queue)
        segs.append((image, d, LANE_CLOUD, req.start_ms, req.end_ms, 0, i, wasted))
        segs.append((image, d, LANE_DOWNLINK, rd.send_ms, rd.arrival_ms, rd.nbytes, i, wasted))


class _Later(simpy.Event):
    """An event its owner triggers to fire after a delay (how SimPy's ``Timeout`` is built)."""

    def fire_after(self, delay: float, value) -> None:
        self._ok = True
        self._value = value
        self.env.schedule(self, delay=delay)


def _waits(traces: TraceSet) -> list[int]:
    """Per op (global order), the exchange of its image (k: its k-th OP_CLOUD) whose answer it
    waits for, else -1 (a device op is complete when the next op is issued). Raises
    TraceFormatError naming the image and op if a ``dep`` is not an earlier op of its image."""
    ops, offsets = traces.ops, traces.offsets
    lengths = np.diff(offsets)
    start = np.repeat(offsets[:-1], lengths)
    idx = _op_index(traces)
    dep = ops["dep"].astype(np.int64)
    target = np.where(dep == DEP_PREV, idx - 1, dep)  # -1: waits for nothing
    if ((target >= idx) | (target < -1)).any():
        for k in range(len(traces)):
            why = check_deps(ops[offsets[k]:offsets[k + 1]])
            if why:
                raise TraceFormatError(
                    f"trace of image {int(traces.images[k])} (position {k} in the set): {why}"
                )
    cloud = np.zeros(len(ops) + 1, bool)
    cloud[:-1] = ops["kind"] == OP_CLOUD
    at = np.where(target >= 0, target + start, len(ops))
    ordinal = np.cumsum(cloud) - 1  # global count of cloud ops before and at each op, minus 1
    ordinal[:-1] -= np.repeat(ordinal[offsets[:-1]] - cloud[offsets[:-1]] + 1, lengths)
    return np.where(cloud[at], ordinal[at], -1).tolist()


def _op_index(traces: TraceSet) -> np.ndarray:
    """Each op's index within its image (global order)."""
    lengths = np.diff(traces.offsets)
    return np.arange(len(traces.ops)) - np.repeat(traces.offsets[:-1], lengths)


def _prepare(traces: TraceSet) -> tuple[list, list, list]:
    """Per image of ``traces``: its op rows as tuples (with ``dep`` = the exchange each op waits
    for, or -1, and ``decided`` = the op's index in its image), its static columns and how many
    tokens the cloud changed."""
    ops = traces.ops.copy()
    ops["dep"] = _waits(traces)  # replay reads op[10]: the exchange it waits for, or -1
    ops["decided"] = _op_index(traces)  # and op[11]: the op's index in its image
    ops, lo = ops.tolist(), traces.offsets.tolist()
    changed = (traces.source == SOURCE_CLOUD_RESAMPLED).sum(axis=1).tolist()
    return [ops[lo[i]:lo[i + 1]] for i in range(len(traces))], _static_columns(traces), changed


def _static_columns(traces: TraceSet) -> list[tuple[int, float, int]]:
    """Per image, what needs no timing: (tokens_uploaded, tokens_verified, cloud_calls_wasted).
    tokens_verified sums ``decided`` over the exchanges not marked wasted: NaN if any of them
    has ``decided`` unknown (-1, format v1)."""
    ops, n = traces.ops, len(traces)
    owner = np.repeat(np.arange(n), np.diff(traces.offsets))
    cloud = ops["kind"] == OP_CLOUD
    kept = cloud & (ops["wasted"] == 0)
    up = np.bincount(owner[cloud], ops["tokens_up"][cloud], minlength=n)
    decided = ops["decided"][kept]
    verified = np.bincount(owner[kept], np.maximum(decided, 0), minlength=n).astype(np.float64)
    unknown = np.bincount(owner[kept], decided < 0, minlength=n) > 0
    verified[unknown] = np.nan
    wasted = np.bincount(owner[cloud & ~kept], minlength=n)
    return list(zip(up.astype(np.int64).tolist(), verified.tolist(), wasted.tolist()))


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
    stop_above: tuple[float, float, int] | None = None,
    population: list | None = None,
    group_traces: dict[str, TraceSet] | None = None,
    direct: bool = True,
    prepare: Callable[[World], None] | None = None,
) -> SimRecords:
    """Replay ``traces`` in a fresh world; one row per image, one per op segment.

    ``tables``: pre-loaded uplink/downlink capacity tables for ``capacity: trace`` (else read
    from ``network``'s paths, relative to the current directory). ``record_segments=False``
    skips the timeline rows (faster sweeps). ``stop_above`` = (q, limit_ms, cut): stop as soon
    as the q-th latency percentile of the images kept (``cut`` trimmed at each end by start
    order) is certain to exceed ``limit_ms`` (``ciarsim.sim.guard``; capacity probes); the
    records then hold the images finished so far and ``meta['cut_short']`` is True.
    ``population``: the scenario's groups (``ciarsim.sim.population``): each phone on its group's
    device and network, one shared cloud; the image rows gain a ``group`` column and a
    ``group_policy`` one. ``group_traces``: the trace sets of groups pinned to another policy
    (``GroupConfig.policy``; group name -> traces of the same prompts). ``direct=False``
    forces the event-driven replay everywhere (the direct one gives identical records where
    it applies: one phone, images back to back, at most one exchange in flight). ``prepare``
    is called on each fresh world before it runs (diagnostics: e.g. scripting a phone's losses).
    """

    def world() -> World:
        w = World(
            workload=workload, models=models, network=network, seed=seed,
            replication=replication, policy=policy, tables=tables, record_segments=record_segments,
            stop_above=stop_above, population=population,
        )  # fmt: skip
        if prepare is not None:
            prepare(w)
        return w

    try:
        return world().run(traces, group_traces, direct)
    except ConcurrentExchanges:  # a fresh world: the first one's links and RNGs were used
        return world().run(traces, group_traces, False)
