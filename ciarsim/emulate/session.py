"""One emulation session: two network namespaces, the relay, the server and the client.

``run_session`` creates the namespaces ``ciarsim-<id>-dev`` / ``ciarsim-<id>-cloud`` (``<id>``
random per session, so parallel runs never collide), starts the relay (root namespace; it opens
the TUN devices ``ce<id>d`` / ``ce<id>c``), moves one TUN into each namespace as a point-to-point
interface (device 10.201.0.1 <-> cloud 10.201.0.2; the addresses live inside the namespaces, so
parallel sessions can reuse them), starts the server in the cloud namespace and the client in the
device namespace, relays the client's block starts to the relay, and collects the client's
latencies and both sides' counters. Processes and namespaces are removed on every exit path
(errors, Ctrl-C): the TUN devices disappear with the relay's file descriptors. Units: ms.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import ciarsim
from ciarsim.errors import EmulationError

DEV_IP, CLOUD_IP, PORT = "10.201.0.1", "10.201.0.2", 7431
CAP_NET_ADMIN = 12
START_TIMEOUT_S = 60.0
# The senders' congestion control: CUBIC, what ``ciarsim.sim.tcp`` models (its window rules are
# CUBIC's) and the default of Linux and Android. A host's own default may differ (BBR on the
# machine of docs/validation.md); BBR paces an application-limited flow at the bandwidth it has
# measured, far below the link's rate, which the simulator does not model.
CONGESTION = "cubic"
AVAILABLE_CC = "/proc/sys/net/ipv4/tcp_available_congestion_control"


def check_host() -> None:
    """Raise ``EmulationError`` unless this process can create namespaces and TUN devices."""
    if os.geteuid() != 0 and not _has_cap(CAP_NET_ADMIN):
        raise EmulationError(
            "ciarsim emulate needs root or CAP_NET_ADMIN (it creates network namespaces and TUN "
            "devices); run it with sudo or grant the capability"
        )
    if not os.path.exists("/dev/net/tun"):
        raise EmulationError("ciarsim emulate needs /dev/net/tun (the tun kernel module): "
                             "load it with `modprobe tun`")  # fmt: skip
    if shutil.which("ip") is None:
        raise EmulationError("ciarsim emulate needs the `ip` command (iproute2)")


def check_congestion(algorithm: str) -> None:
    """Raise ``EmulationError`` unless this kernel offers TCP congestion control ``algorithm``."""
    try:
        with open(AVAILABLE_CC, encoding="utf-8") as f:
            available = f.read().split()
    except OSError:
        available = []
    if algorithm not in available:
        raise EmulationError(f"--congestion: this kernel has no TCP congestion control "
                             f"'{algorithm}' (available: {', '.join(available) or 'unknown'}); "
                             f"load its module (e.g. `modprobe tcp_{algorithm}`) or pick another")  # fmt: skip


def _has_cap(bit: int) -> bool:
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            eff = next(ln for ln in f if ln.startswith("CapEff:"))
    except (OSError, StopIteration):
        return False
    return bool(int(eff.split()[1], 16) >> bit & 1)


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode:
        raise EmulationError(f"`ip {' '.join(args)}` failed: {res.stderr.strip()}")


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _env() -> dict:
    root = str(Path(ciarsim.__file__).resolve().parents[1])  # this ciarsim, not another install
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _expect(proc: subprocess.Popen, word: str, what: str, log: Path) -> None:
    """Wait for ``proc`` to print ``word`` on its stdout (a line)."""
    line = proc.stdout.readline()
    if line.strip() != word:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        raise EmulationError(f"the emulator's {what} did not start: {_tail(log)}")


@contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """In the main thread, SIGTERM raises KeyboardInterrupt, so the cleanup runs as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class _Namespaces:
    """The two namespaces of a session; removed on exit."""

    def __init__(self, tag: str):
        self.dev, self.cloud = f"ciarsim-{tag}-dev", f"ciarsim-{tag}-cloud"
        self.made: list[str] = []

    def __enter__(self) -> "_Namespaces":
        for ns in (self.dev, self.cloud):
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",  # no IPv6 chatter
                            "net.ipv6.conf.all.disable_ipv6=1",
                            "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True)
            # a new connection must not start from the ssthresh and RTT an earlier one cached
            # (Linux's tcp_metrics): each replay block gets a fresh connection, as fresh as the
            # simulator's
            res = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                                  "net.ipv4.tcp_no_metrics_save=1"], capture_output=True, text=True)
            if res.returncode:
                raise EmulationError(f"could not set net.ipv4.tcp_no_metrics_save in a namespace: "
                                     f"{res.stderr.strip()}")
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _spawn(stack: ExitStack, cmd: list[str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` (stdin/stdout pipes, stderr to ``log``), terminated on leaving ``stack``."""
    err = open(log, "w+", encoding="utf-8")  # noqa: SIM115 - closed by the stack
    stack.callback(err.close)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                            text=True, env=_env())  # fmt: skip
    stack.callback(_stop, proc)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _attach(tun: str, ns: str, local: str, peer: str) -> None:
    _ip("link", "set", tun, "netns", ns)
    _ip("-n", ns, "addr", "add", local, "peer", peer, "dev", tun)
    _ip("-n", ns, "link", "set", tun, "up")


@contextmanager
def shaped_link(relay: dict, workdir: Path, realtime: bool = True) -> Iterator["Link"]:
    """Two namespaces joined by the relay shaping ``relay`` (``{"uplink": ..., "downlink": ...,
    "seed": [...]}``, see ``ciarsim.emulate.relay``); everything is removed on exit. Processes
    started with ``Link.spawn`` are stopped on exit too."""
    check_host()
    tag = secrets.token_hex(4)
    with ExitStack() as stack:
        stack.enter_context(_term_as_interrupt())
        ns = stack.enter_context(_Namespaces(tag))
        tun_dev, tun_cloud = f"ce{tag}d", f"ce{tag}c"
        spec = {**relay, "tun_device": tun_dev, "tun_cloud": tun_cloud,
                "stats": str(workdir / "relay.json"), "packets": str(workdir / "packets.csv"),
                "realtime": realtime}  # fmt: skip
        (workdir / "relay.spec.json").write_text(json.dumps(spec))
        link = Link(ns, stack, workdir)
        link.relay = link.spawn(None, ["ciarsim.emulate.relay", str(workdir / "relay.spec.json")],
                                "relay", "ready")  # fmt: skip
        _attach(tun_dev, ns.dev, DEV_IP, CLOUD_IP)
        _attach(tun_cloud, ns.cloud, CLOUD_IP, DEV_IP)
        yield link


class Link:
    """A live shaped link: its namespaces (``dev``, ``cloud``) and the relay process."""

    def __init__(self, ns: _Namespaces, stack: ExitStack, workdir: Path):
        self.dev, self.cloud, self.stack, self.workdir = ns.dev, ns.cloud, stack, workdir
        self.relay: subprocess.Popen | None = None

    def spawn(self, ns: str | None, module_args: list[str], name: str,
              ready: str | None = None) -> subprocess.Popen:  # fmt: skip
        """``python -m <module_args>`` in namespace ``ns`` (None: this one), stderr to
        ``<name>.log``; waits for the line ``ready`` if given."""
        cmd = _python(*module_args)
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        proc = _spawn(self.stack, cmd, self.workdir / f"{name}.log")
        if ready:
            _expect(proc, ready, name, self.workdir / f"{name}.log")
        return proc

    def start(self, t0: float, block: int, comp_ms: float = 0.0) -> None:
        """Tell the relay that replay block ``block`` starts at ``t0`` (monotonic s), its one-way
        delays shortened by ``comp_ms``."""
        self.relay.stdin.write(f"{t0!r} {block} {comp_ms!r}\n")
        self.relay.stdin.flush()

    def close_relay(self) -> dict:
        """Stop the relay and return its counters, with its packet log under ``"packets"``
        (a list of rows, ``relay.PACKET_COLUMNS``)."""
        self.relay.stdin.close()
        self.relay.wait(timeout=30)
        path, log = self.workdir / "relay.json", self.workdir / "packets.csv"
        if not path.exists() or not log.exists():
            raise EmulationError(f"the emulator's relay failed: {_tail(self.workdir / 'relay.log')}")
        rows = [[float(v) if "." in v else int(v) for v in line.split(",")]
                for line in log.read_text().splitlines()[1:]]  # fmt: skip
        return {**json.loads(path.read_text()), "packets": rows}


def run_session(relay: dict, blocks: list[dict], models: dict, *, realtime: bool = True,
                gap_s: float = 0.3, timeout_s: float = 3600.0, probes: int = 41,
                congestion: str = CONGESTION) -> dict:  # fmt: skip
    """Replay ``blocks`` (each ``{"think_ms", "images": programs}``) between a real client and
    server over a link shaped by the relay spec ``relay`` (the testbed's own round-trip overhead,
    measured with ``probes`` empty exchanges, is taken off the relay's delays so that the
    application-level RTT is the scenario's); both ends run TCP congestion control
    ``congestion``, and each block runs on a connection of its own. Returns ``{"images": rows,
    "overhead_ms", "requests", "relay": relay counters, "server": server counters}``; rows carry
    ``block``, ``image``, ``latency_ms``; ``requests`` (per block) and the server's ``answers``
    (per connection, the calibration's first) list each message's (exchange id, bytes) in stream
    order, which with the relay's packet log places every dropped segment (``losses``)."""
    check_congestion(congestion)
    with tempfile.TemporaryDirectory(prefix="ciarsim-emu-") as tmp, \
            shaped_link(relay, Path(tmp), realtime) as link:  # fmt: skip
        d = Path(tmp)
        specs = {
            "server": {"host": CLOUD_IP, "port": PORT, "models": models,
                       "congestion": congestion, "connections": 1 + len(blocks),
                       "stats": str(d / "server.json"), "realtime": realtime},
            "client": {"host": CLOUD_IP, "port": PORT, "blocks": blocks, "gap_s": gap_s,
                       "congestion": congestion,
                       "one_way_ms": relay["uplink"]["one_way_ms"], "probes": probes,
                       "results": str(d / "client.json"), "realtime": realtime},
        }  # fmt: skip
        for name, spec in specs.items():
            (d / f"{name}.spec.json").write_text(json.dumps(spec))
        peer = lambda role: ["ciarsim.emulate.peers", role, str(d / f"{role}.spec.json")]  # noqa: E731
        srv = link.spawn(link.cloud, peer("server"), "server", "listening")
        cli = link.spawn(link.dev, peer("client"), "client", "connected")
        cli.stdin.write("go\n")
        cli.stdin.flush()
        for line in cli.stdout:  # "start <t0> <block> <ms>" per block, forwarded to the relay
            _, t0, block, comp = line.split()
            link.start(float(t0), int(block), float(comp))
        if cli.wait(timeout=timeout_s):
            raise EmulationError(f"the emulated client failed: {_tail(d / 'client.log')}")
        srv.wait(timeout=30)
        counters = link.close_relay()
        if not (d / "server.json").exists():
            raise EmulationError(f"the emulator's server failed: {_tail(d / 'server.log')}")
        got = json.loads((d / "client.json").read_text())
        return {
            "images": got["images"], "overhead_ms": got["overhead_ms"], "requests": got["requests"],
            "relay": counters,
            "server": json.loads((d / "server.json").read_text()),
        }


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-800:].strip() or "(no output)"
    except OSError:
        return "(no log)"
