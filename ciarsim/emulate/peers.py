"""The two real processes of an emulation: the device client and the cloud server.

Run as ``python -m ciarsim.emulate.peers {client|server} SPEC.json`` inside their network
namespaces (``ip netns exec``). They talk over ONE persistent kernel TCP connection with
``TCP_NODELAY`` (no Nagle delay: a message is handed to the kernel at once, as a latency-bound
request/response service would). Framing: each message is a 4-byte big-endian length followed by
that many bytes; a request carries ``REQUEST`` (exchange id, the cloud op's steps, new tokens,
context, prefill flag, answer bytes) then zero padding, an answer carries its exchange id then
padding, so every message has exactly the simulated size (``ciarsim.sim.payload``; the 28-byte
request and 8-byte answer headers fit in the simulator's ``message_header_bytes``, 64 by default).

Server: the simulator's own batching server (``ciarsim.sim.cloud.CloudServer``, priced by the same
``CostModel``) driven by a real-time clock (``ClockEnv``) instead of SimPy: each iteration is a
sleep of its simulated length. Client: replays each image's op program (``ciarsim.emulate.program``)
as the simulator's control thread does: device ops are sleeps of their simulated length on one
FIFO compute resource, cloud ops send a request and move on, an op waits for the answer it depends
on, the image ends when every answer has arrived. Latency on ``time.monotonic``.
"""

from __future__ import annotations

import heapq
import json
import os
import queue
import select
import socket
import struct
import sys
import threading
import time

from ciarsim.emulate.relay import realtime

LENGTH = struct.Struct("!I")
REQUEST = struct.Struct("!IiiiiI")  # id, steps, new_tokens, context, prefill, answer bytes
ANSWER = struct.Struct("!I")  # id
MIN_REQUEST = LENGTH.size + REQUEST.size
MIN_ANSWER = LENGTH.size + ANSWER.size


SPIN_S = 0.001  # sleeps end with this much busy-waiting: a timer wake-up on a loaded machine
# comes ~1-2 ms late, a spinning process is on time (the emulated compute, not the host, sets
# the durations)


def sleep_until(t: float) -> None:
    """Sleep until monotonic time ``t`` (s): ``time.sleep`` to ``SPIN_S`` before, then spin."""
    pause = t - time.monotonic() - SPIN_S
    if pause > 0:
        time.sleep(pause)
    while time.monotonic() < t:
        pass


def frame(head: bytes, total: int) -> bytes:
    """A message of ``max(total, 4 + len(head))`` bytes: length prefix, ``head``, zeros."""
    body = max(total - LENGTH.size, len(head))
    return LENGTH.pack(body) + head + bytes(body - len(head))


class Frames:
    """Reassembles length-prefixed messages from a byte stream."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the complete message bodies now available, in order."""
        self.buf += data
        out = []
        while len(self.buf) >= LENGTH.size:
            (n,) = LENGTH.unpack_from(self.buf)
            if len(self.buf) < LENGTH.size + n:
                break
            out.append(bytes(self.buf[LENGTH.size:LENGTH.size + n]))
            del self.buf[:LENGTH.size + n]
        return out


# --------------------------------------------------------------------------------------------
# server


class _Timer:
    __slots__ = ("callbacks",)

    def __init__(self) -> None:
        self.callbacks: list = []


class ClockEnv:
    """The part of a SimPy environment ``CloudServer`` uses (``now`` in ms, ``timeout``), on the
    monotonic clock. While a timer's callbacks run, ``now`` is the timer's due time, so chained
    iterations follow the simulated durations and the process's own wake-up delays do not add up
    (they are the emulator's, not the GPU's)."""

    def __init__(self, start_s: float):
        self.start_s = start_s
        self.heap: list[tuple[float, int, _Timer]] = []
        self.seq = 0
        self.virtual: float | None = None
        self.late_ms: list[float] = []  # how late each timer fired (ms)

    @property
    def now(self) -> float:
        if self.virtual is not None:
            return self.virtual
        return (time.monotonic() - self.start_s) * 1000.0

    def timeout(self, delay_ms: float) -> _Timer:
        ev = _Timer()
        self.seq += 1
        heapq.heappush(self.heap, (self.now + delay_ms, self.seq, ev))
        return ev

    def wait_s(self) -> float | None:
        """Seconds to ``SPIN_S`` before the next due timer (None: none pending)."""
        if not self.heap:
            return None
        return max(self.heap[0][0] / 1000.0 + self.start_s - time.monotonic() - SPIN_S, 0.0)

    def fire_due(self) -> None:
        """Run the callbacks of every timer due by now, spinning to one due within ``SPIN_S``."""
        if self.heap:
            due_s = self.heap[0][0] / 1000.0 + self.start_s
            if due_s - time.monotonic() < SPIN_S:
                sleep_until(due_s)
        while self.heap and self.heap[0][0] <= (time.monotonic() - self.start_s) * 1000.0:
            due, _, ev = heapq.heappop(self.heap)
            self.late_ms.append((time.monotonic() - self.start_s) * 1000.0 - due)
            self.virtual = due
            for cb in ev.callbacks:
                cb(ev)
            self.virtual = None


def _serve_connection(conn: socket.socket, env: ClockEnv, cloud) -> list[tuple[int, int]]:
    """Answer ``conn``'s requests through ``cloud`` until the client closes it; returns the
    answers sent, (exchange id, bytes) in stream order."""
    frames, sent = Frames(), []

    def answer(ident: int, nbytes: int):
        def done(_req) -> None:
            data = frame(ANSWER.pack(ident), nbytes)
            conn.sendall(data)
            sent.append((ident, len(data)))
        return done

    while True:
        ready, _, _ = select.select([conn], [], [], env.wait_s())
        if ready:
            data = conn.recv(1 << 16)
            if not data:
                break
            for body in frames.feed(data):
                ident, steps, new, ctx, prefill, down = REQUEST.unpack_from(body)
                cloud.request(steps, new, ctx, bool(prefill), answer(ident, down))
        env.fire_due()
    return sent


def _congestion(sock: socket.socket, algorithm: str) -> None:
    """Pin ``sock``'s congestion control (Linux ``TCP_CONGESTION``) to ``algorithm``."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, algorithm.encode())


def congestion_of(sock: socket.socket) -> str:
    """The congestion control ``sock`` runs, as the kernel reports it."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()


def serve(spec: dict) -> None:
    """Accept ``spec["connections"]`` connections one after the other (the client's calibration,
    then one per replay block) and answer each one's requests until it closes."""
    from ciarsim.scenario.schema import ModelsConfig  # noqa: PLC0415
    from ciarsim.sim.cloud import CloudServer  # noqa: PLC0415
    from ciarsim.sim.costs import CostModel  # noqa: PLC0415

    models = ModelsConfig(**spec["models"])
    cost = CostModel.from_config(models.cloud, "models.cloud")
    c = models.cloud
    lsock = socket.create_server((spec["host"], spec["port"]))
    _congestion(lsock, spec["congestion"])  # accepted connections inherit it
    print("listening", flush=True)
    served = iterations = 0
    late: list[float] = []
    answers: list[list[tuple[int, int]]] = []  # per connection
    for _ in range(spec["connections"]):
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        env = ClockEnv(time.monotonic())
        cloud = CloudServer(env, cost, c.max_batch, c.text_tokens, c.cfg_rows)
        sent = _serve_connection(conn, env, cloud)
        served += len(sent)
        answers.append(sent)
        iterations += cloud.iterations
        late += env.late_ms
        conn.close()
    late = sorted(late) or [0.0]
    _write_json(spec["stats"], {"served": served, "iterations": iterations,
                                "connections": spec["connections"], "answers": answers,
                                "timer_late_ms_p50": late[len(late) // 2],
                                "timer_late_ms_p99": late[int(len(late) * 0.99)]})


# --------------------------------------------------------------------------------------------
# client


class _Conn:
    """The client's side of the connection: sends requests, collects answered exchange ids.

    Requests are written by a sender thread, so ``request`` returns at once, as the trace's
    control thread moves on after starting an exchange: a blocking ``sendall`` would hold the
    device's compute until the kernel's send buffer took the whole message (one round trip or
    more for a message larger than the buffer, a retransmission timeout under loss)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.frames, self.answered = sock, Frames(), set()
        self.sent: list[tuple[int, int]] = []  # (exchange id, bytes) per request, stream order
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.sender = threading.Thread(target=self._send_loop, daemon=True)
        self.sender.start()

    def _send_loop(self) -> None:
        while (data := self.outbox.get()) is not None:
            self.sock.sendall(data)

    def request(self, ident: int, op: list) -> None:
        _, _, _, up, down, steps, new, ctx, prefill = op
        data = frame(REQUEST.pack(ident, steps, new, ctx, prefill, down), up)
        self.sent.append((ident, len(data)))
        self.outbox.put(data)

    def close(self) -> None:
        """Let the sender finish what is queued, then close the socket."""
        self.outbox.put(None)
        self.sender.join()
        self.sock.close()

    def wait_for(self, ident: int) -> None:
        """Block until the answer to exchange ``ident`` has arrived."""
        while ident not in self.answered:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection")
            for body in self.frames.feed(data):
                self.answered.add(ANSWER.unpack_from(body)[0])


def replay_image(conn: _Conn, ops: list, first_id: int) -> tuple[float, float, int]:
    """Replay one image's op program; returns (start s, end s, exchanges) on the monotonic clock.
    Each op: [kind (0 device, 1 cloud), wait (the image's exchange it waits for, -1 none),
    device ms, up bytes, down bytes, steps, new tokens, context, prefill]."""
    t0 = time.monotonic()
    busy = t0
    k = 0
    for op in ops:
        if op[1] >= 0:
            conn.wait_for(first_id + op[1])
        if op[0] == 0:
            if op[2] <= 0.0:  # a pure wait (a join)
                continue
            busy = max(time.monotonic(), busy) + op[2] / 1000.0
            sleep_until(busy)
            continue
        conn.request(first_id + k, op)
        k += 1
    for i in range(k):
        conn.wait_for(first_id + i)
    return t0, time.monotonic(), k


def calibrate(conn: _Conn, one_way_ms: float, probes: int, first_id: int) -> float:
    """The testbed's own round-trip overhead (ms): the median round trip of ``probes`` empty
    exchanges sent back to back (no cloud work, 28 bytes up, 8 down; ids from ``first_id``)
    before the first block (the relay applies the one-way delay only), minus twice that delay.
    Process wake-ups and the kernels' packet paths on a loaded machine make it several ms."""
    rtts = []
    for i in range(first_id, first_id + probes):
        t = time.monotonic()
        conn.request(i, [1, -1, 0.0, 0, MIN_ANSWER, 0, 0, 0, 0])
        conn.wait_for(i)
        rtts.append((time.monotonic() - t) * 1000.0)
    rtts.sort()
    return max(rtts[len(rtts) // 2] - 2.0 * one_way_ms, 0.0)


def connect(spec: dict) -> _Conn:
    """A fresh connection to the server: congestion control pinned before the handshake,
    ``TCP_NODELAY``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _congestion(sock, spec["congestion"])
    sock.settimeout(30)
    sock.connect((spec["host"], spec["port"]))
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _Conn(sock)


def client(spec: dict) -> None:
    """Measure the testbed's round-trip overhead (``calibrate``) on a first connection, then for
    each block: open a fresh connection (so that no block inherits another's congestion state:
    each policy starts as the simulator starts it), announce the block's time 0 and the
    per-direction compensation on stdout (``start <t0> <block> <ms>``, relayed to the relay),
    wait for it and replay its images back to back; write the latencies and the overhead."""
    conn = connect(spec)
    print("connected", flush=True)
    sys.stdin.readline()  # go
    rows = []
    overhead_ms = calibrate(conn, spec["one_way_ms"], spec["probes"], 0)
    conn.close()
    next_id = spec["probes"]
    requests = []  # per block: (exchange id, bytes) of each request, in stream order
    for b, block in enumerate(spec["blocks"]):
        conn = connect(spec)  # the handshake happens before the block's time 0
        t0 = time.monotonic() + spec["gap_s"]
        print(f"start {t0!r} {b} {overhead_ms / 2.0!r}", flush=True)
        time.sleep(max(t0 - time.monotonic(), 0.0))
        for i, img in enumerate(block["images"]):
            if i and block["think_ms"] > 0:
                time.sleep(block["think_ms"] / 1000.0)
            start, end, k = replay_image(conn, img["ops"], next_id)
            next_id += k
            rows.append({"block": b, "image": img["image"], "overhead_ms": overhead_ms, "start_ms": (start - t0) * 1000.0,
                         "end_ms": (end - t0) * 1000.0, "latency_ms": (end - start) * 1000.0,
                         "port": conn.sock.getsockname()[1], "congestion": congestion_of(conn.sock)})
        conn.close()
        requests.append(conn.sent)
    _write_json(spec["results"], {"images": rows, "overhead_ms": overhead_ms, "requests": requests})


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main(role: str, spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("realtime", True):
        realtime(spec.get("priority", 5))
    (serve if role == "server" else client)(spec)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
