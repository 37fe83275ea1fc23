"""Ctrl-C on `ciarsim run --workers 2`, with real signals at several moments of a tiny run: it
ends within seconds with exit 130 and one line, no worker traceback, no process left behind, and
the parts finished before the signal are kept."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """
name: int
workload: {images: 2}
models: {checkpoints: %s}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40}
policies: [{name: base}, {name: device_only}, {name: sd}]
sweep: {network.rtt_ms: [10, 20, 30, 40, 50, 60, 70, 80]}
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` still alive (zombies count: nobody reaped them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp session ...
        if int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def _default_sigint() -> None:
    """In the child before exec: take Ctrl-C as a terminal would (a background job started by a
    shell script inherits SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(tmp_path: Path, when) -> tuple[int, str, float, int]:
    """Start a run, wait until ``when(out)`` is true, Ctrl-C its process group (as a terminal
    does); return exit code, stderr, seconds from signal to exit and parts on disk at the signal."""
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO % (ROOT / "models" / "shapes-256"))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ciarsim.cli", "run", str(f), "--out", str(out), "--cache-dir",
           str(tmp_path / "cache"), "--workers", "2", "--no-report"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while not when(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal"
    parts = len(list(out.glob("parts/*.images.arrow")))
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    took = time.monotonic() - sent
    left = _session_members(proc.pid)
    for _ in range(20):  # the resource tracker exits on its own once the run has closed its pipe
        if not left:
            break
        time.sleep(0.1)
        left = _session_members(proc.pid)
    assert left == [], [Path(f"/proc/{p}/cmdline").read_text() for p in left]
    return proc.returncode, stderr, took, parts


def _check(code: int, stderr: str, took: float) -> None:
    assert code == 130, stderr
    assert took < 15, f"took {took:.1f} s to stop"
    assert "Traceback" not in stderr and "Exception in" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert lines == ["interrupted: finished results were kept; re-run to complete the rest"]


def _started(seconds: float):
    start = time.monotonic()
    return lambda out: time.monotonic() - start > seconds


@pytest.mark.parametrize("seconds", [2.0, 6.0])
def test_ctrl_c_while_starting(tmp_path, seconds):
    code, stderr, took, _ = _interrupt(tmp_path, _started(seconds))
    _check(code, stderr, took)


def test_ctrl_c_while_replaying_keeps_finished_parts(tmp_path):
    code, stderr, took, parts = _interrupt(
        tmp_path, lambda out: any(out.glob("parts/*.images.arrow"))
    )
    _check(code, stderr, took)
    assert "decoding + simulating: 1/" in stderr  # plain progress lines: stderr is a pipe
    kept = list((tmp_path / "out").glob("parts/*.images.arrow"))
    assert parts >= 1 and len(kept) >= parts
