"""The packet relay: a dedicated process forwarding raw IP packets between two TUN devices.

Run as ``python -m ciarsim.emulate.relay SPEC.json`` by ``ciarsim.emulate.session``. It opens two
TUN devices (``IFF_TUN | IFF_NO_PI``: each read is one IP packet) named in the spec, prints
``ready`` and then forwards (each line on its stdin ``<t0> <block> <ms>`` starts a replay block at ``t0``, monotonic s,
with fresh shapers whose one-way delay is shortened by ``ms``; ``inf -1 0`` returns to
delay-only forwarding for the client's calibration; the testbed's own one-way overhead
measured by the client, ``ciarsim.emulate.peers.calibrate``; packets before the first block pass
with the one-way delay only): packets read from the device side's TUN go through the uplink
``Shaper``, packets from the cloud side's TUN through the downlink one, and each is written to
the other TUN at the time its shaper returned. TCP is never terminated here: the two kernels
talk TCP end to end and the relay only delays, serialises and drops their IP packets.

One thread, one timer heap, ``time.monotonic`` (the same system-wide clock the client measures
latency with), ``select`` with the time to the next due packet as timeout: no thread or timer per
packet. It asks for SCHED_FIFO (falls back to the normal scheduler when refused) so that a loaded
machine delays its wake-ups less. SIGTERM ends it; it then writes its counters to
``spec["stats"]``, and, if ``spec["packets"]`` names a file, its log of every TCP segment with
payload forwarded or dropped during a block (``PACKET_COLUMNS``; ``offset``: the segment's first
byte in its connection's stream, from the connection's SYN), from which a dropped segment is
mapped to the application message it belonged to and to the time the sender resent it.
Units: ms, bytes.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
import select
import signal
import struct
import sys
import time

import numpy as np

from ciarsim.emulate.shaper import Shaper
from ciarsim.sim.capacity import read_mahimahi

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MAX_PACKET = 65535


TCP_SYN = 0x02
PACKET_COLUMNS = ("block", "direction", "t_ms", "out_ms", "offset", "bytes", "dropped")


def tcp_segment(pkt: bytes) -> tuple[int, int, int] | None:
    """(sequence number, payload bytes, flags) of an IPv4 TCP packet; None for anything else."""
    if len(pkt) < 40 or pkt[0] >> 4 != 4 or pkt[9] != 6:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    doff = (pkt[ihl + 12] >> 4) * 4
    total = int.from_bytes(pkt[2:4], "big")
    return int.from_bytes(pkt[ihl + 4 : ihl + 8], "big"), total - ihl - doff, pkt[ihl + 13]


def write_packets(path: str, packets: list[tuple]) -> None:
    """The packet log as CSV (``PACKET_COLUMNS``), written atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(",".join(PACKET_COLUMNS) + "\n")
        f.writelines(",".join(map(str, p)) + "\n" for p in packets)
    os.replace(tmp, path)


def open_tun(name: str) -> int:
    """A non-blocking fd of a new TUN device ``name`` (no packet info header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def realtime(priority: int) -> bool:
    """Ask for SCHED_FIFO at ``priority``; False if the system refuses."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        return False


def load_traces(spec: dict) -> dict:
    """Each direction's Mahimahi trace (rescaled to its ``mbps``), or None on a constant link."""
    out = {}
    for k in ("uplink", "downlink"):
        d = spec[k]
        trace = read_mahimahi(d["trace_path"], f"relay {k} trace") if d.get("trace_path") else None
        out[k] = trace.rescaled(d["mbps"]) if trace is not None and d.get("mbps") else trace
    return out


def shaper_from(d: dict, seed: list[int], trace=None, comp_ms: float = 0.0) -> Shaper:
    """A direction's shaper from its spec dict (keys of ``Shaper``) over ``trace`` if given, its
    one-way delay shortened by ``comp_ms`` (the testbed's own one-way overhead; never below 0)."""
    return Shaper(
        one_way_ms=max(d["one_way_ms"] - comp_ms, 0.0), mbps=None if trace is not None else d["mbps"], trace=trace,
        offset_ms=d.get("offset_ms", 0.0), jitter_ms=d.get("jitter_ms", 0.0),
        jitter_dist=d.get("jitter_dist", "exponential"), loss_rate=d.get("loss_rate", 0.0),
        rng=np.random.default_rng(seed),
    )  # fmt: skip


class Relay:
    """The forwarding loop over two TUN fds; ``start_s`` is the replay's time 0 (monotonic s)."""

    def __init__(self, fd_dev: int, fd_cloud: int, shapers, control: int):
        """``shapers(block)``: fresh (uplink, downlink) shapers for replay block ``block``."""
        self.fds, self.shapers = (fd_dev, fd_cloud), shapers
        self.routes = self._routes(*shapers(0, 0.0))
        self.control = control  # a pipe of lines "<time 0, monotonic s> <block>"; EOF: stop
        self.start_s = float("inf")  # until then every packet is "before the replay"
        self.totals: list[dict] = []  # counters of the blocks before the current one
        self.heap: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.late_ms: list[float] = []  # how late each packet was written (ms)
        self.stop = False
        self.early: dict[int, float] = {}
        self.block = -1  # the replay block now running
        self.direction = {fd_dev: 0, fd_cloud: 1}  # 0 uplink, 1 downlink
        self.isn: dict[int, int] = {}  # per reading fd: the initial sequence number of its last SYN
        # every TCP segment with payload seen during a block, in arrival order:
        # (block, direction, ms since the block's time 0 when it arrived and when it is due out
        # (-1: dropped), stream offset, payload bytes, dropped)
        self.packets: list[tuple[int, int, float, float, int, int, int]] = []

    def _routes(self, up: Shaper, down: Shaper) -> dict:
        fd_dev, fd_cloud = self.fds
        return {fd_dev: (up, fd_cloud), fd_cloud: (down, fd_dev)}

    def _read(self, fd: int, now_s: float) -> None:
        shaper, out = self.routes[fd]
        now_ms = (now_s - self.start_s) * 1000.0 if now_s >= self.start_s else 0.0
        while True:
            try:
                pkt = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                return
            seg = tcp_segment(pkt)
            if seg is not None and seg[2] & TCP_SYN:
                self.isn[fd] = seg[0]
            if now_s < self.start_s:  # before the replay (handshake): delay only, FIFO
                due_s = max(now_s + shaper.one_way_ms / 1000.0, self.early.get(fd, 0.0))
                self.early[fd] = due_s
            else:
                due_ms = shaper.admit(now_ms, len(pkt))
                if seg is not None and seg[1] > 0 and fd in self.isn:
                    self.packets.append((self.block, self.direction[fd], round(now_ms, 3),
                                         -1.0 if due_ms is None else round(due_ms, 3),
                                         (seg[0] - self.isn[fd] - 1) & 0xFFFFFFFF, seg[1],
                                         int(due_ms is None)))  # fmt: skip
                if due_ms is None:
                    continue
                due_s = self.start_s + due_ms / 1000.0
            self.seq += 1
            heapq.heappush(self.heap, (due_s, self.seq, out, pkt))

    def _flush(self, now_s: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now_s:
            due, _, out, pkt = heapq.heappop(heap)
            try:
                os.write(out, pkt)
            except OSError:  # the interface went down (shutting down): drop
                pass
            self.late_ms.append((now_s - due) * 1000.0)

    def run(self) -> None:
        """Forward until ``stop`` is set (by SIGTERM)."""
        fds = [*self.fds, self.control]
        while not self.stop:
            now = time.monotonic()
            self._flush(now)
            timeout = max(self.heap[0][0] - now, 0.0) if self.heap else 0.2
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            now = time.monotonic()
            for fd in ready:
                if fd == self.control:
                    self._command()
                else:
                    self._read(fd, now)

    def _command(self) -> None:
        text = os.read(self.control, 4096).decode()
        if not text:
            self.stop = True
            return
        for line in text.split("\n"):
            if not line.strip():
                continue
            start, block, comp = line.split()
            self.start_s = float(start)
            if int(block) >= 0:  # else: back to delay-only, shapers unchanged
                self.block = int(block)
                self.totals.append(self._counters())
                self.routes = self._routes(*self.shapers(int(block), float(comp)))

    def _counters(self) -> dict:
        (up, _), (down, _) = self.routes.values()
        return {"uplink": up.stats(), "downlink": down.stats()}

    def stats(self) -> dict:
        """Counters per direction and the lateness of writes (ms quantiles)."""
        late = np.array(self.late_ms) if self.late_ms else np.zeros(1)
        blocks = self.totals[1:] + [self._counters()]  # the first entry: before any block
        total = {d: {k: sum(b[d][k] for b in blocks) for k in blocks[0][d]}
                 for d in ("uplink", "downlink")}  # fmt: skip
        return {
            **total, "blocks": blocks,
            "late_ms_p50": float(np.quantile(late, 0.5)), "late_ms_p99": float(np.quantile(late, 0.99)),
            "late_ms_max": float(late.max()),
        }  # fmt: skip


def main(spec_path: str) -> None:
    """Run the relay described by the JSON file ``spec_path`` (see ``session.relay_spec``)."""
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    fd_dev, fd_cloud = open_tun(spec["tun_device"]), open_tun(spec["tun_cloud"])
    rt = realtime(spec.get("priority", 10)) if spec.get("realtime", True) else False

    traces = load_traces(spec)

    def shapers(block: int, comp_ms: float) -> tuple[Shaper, Shaper]:
        return (shaper_from(spec["uplink"], spec["seed"] + [block, 1], traces["uplink"], comp_ms),
                shaper_from(spec["downlink"], spec["seed"] + [block, 2], traces["downlink"],
                            comp_ms))  # fmt: skip

    relay = Relay(fd_dev, fd_cloud, shapers, sys.stdin.fileno())

    def on_term(*_):
        relay.stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("ready", flush=True)
    relay.run()
    out = {**relay.stats(), "realtime": rt}
    tmp = spec["stats"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, spec["stats"])
    if spec.get("packets"):
        write_packets(spec["packets"], relay.packets)


if __name__ == "__main__":
    main(sys.argv[1])
