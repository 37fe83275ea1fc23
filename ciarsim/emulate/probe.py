"""Simple flows that test the relay against its own spec (``tests/emulate``, docs/validation.md).

``python -m ciarsim.emulate.probe ROLE HOST PORT N OUT``, run inside a namespace:

- ``echo``: a UDP echo server (answers ``N`` datagrams, then exits);
- ``ping``: sends ``N`` 64-byte UDP probes 50 ms apart and writes each round-trip time (ms, NaN
  when the probe or its echo was lost) to ``OUT`` (JSON);
- ``sink``: accepts one TCP connection, reads until it closes and writes (bytes, seconds from
  the first to the last byte received) to ``OUT``;
- ``source``: connects and sends ``N`` bytes as fast as TCP allows.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import time

from ciarsim.emulate.relay import realtime


def echo(host: str, port: int, n: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    print("ready", flush=True)
    sock.settimeout(20.0)  # for the first probe; then 1 s of silence ends the flow (losses)
    try:
        for _ in range(n):
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)
            sock.settimeout(1.0)
    except socket.timeout:
        pass


def ping(host: str, port: int, n: int) -> list[float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)  # a probe not back by then counts as lost
    out = []
    for i in range(n):
        t = time.monotonic()
        sock.sendto(i.to_bytes(4, "big") + bytes(60), (host, port))
        rtt = math.nan
        try:
            while True:
                data = sock.recv(2048)
                if int.from_bytes(data[:4], "big") == i:
                    rtt = (time.monotonic() - t) * 1000.0
                    break
        except socket.timeout:
            pass
        out.append(rtt)
        time.sleep(max(0.05 - (time.monotonic() - t), 0.0))
    return out


def sink(host: str, port: int) -> tuple[int, float]:
    lsock = socket.create_server((host, port))
    print("ready", flush=True)
    conn, _ = lsock.accept()
    total, first, last = 0, None, None
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        last = time.monotonic()
        first = first or last
        total += len(data)
    return total, (last - first) if first else 0.0


def source(host: str, port: int, n: int) -> None:
    sock = socket.create_connection((host, port), timeout=30)
    chunk = bytes(1 << 16)
    sent = 0
    while sent < n:
        sent += sock.send(chunk[:min(len(chunk), n - sent)])
    sock.close()


def main(role: str, host: str, port: str, n: str, out: str) -> None:
    realtime(5)
    port_i, n_i = int(port), int(n)
    result = None
    if role == "echo":
        echo(host, port_i, n_i)
    elif role == "ping":
        result = ping(host, port_i, n_i)
    elif role == "sink":
        result = sink(host, port_i)
    else:
        source(host, port_i, n_i)
    if result is not None:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:6])
