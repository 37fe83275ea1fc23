"""Results and caches are keyed by content: change an input's bytes and the next run recomputes.

Each test runs a scenario, changes one input in place (a capacity-trace file, a package data file,
a checkpoint's weights) without touching the scenario, and shows that the next run recomputes the
parts and that the results change where they should. Unchanged inputs still reuse every part.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ciarsim.errors import CheckpointError
from ciarsim.runner import provenance
from ciarsim.runner.run import run_scenario
from ciarsim.scenario import parse_scenario

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_run import SCENARIO, hand_decoder  # noqa: E402


def _trace(path: Path, every_ms: int) -> None:
    """A Mahimahi trace: one 1500-byte delivery opportunity every ``every_ms`` ms for 1 s."""
    path.write_text("".join(f"{t}\n" for t in range(every_ms, 1001, every_ms)))


def _trace_scenario(tmp_path: Path) -> str:
    up, down = tmp_path / "up.trace", tmp_path / "down.trace"
    _trace(up, 1)
    _trace(down, 1)
    return f"""
name: traced
seed: 3
replications: 2
workload: {{images: 3, token_grid: 4}}
network: {{capacity: trace, uplink_trace: {up}, downlink_trace: {down}, rtt_ms: 40}}
policies:
  - {{name: base}}
"""


def test_replacing_a_capacity_trace_file_recomputes(tmp_path):
    sc = parse_scenario(_trace_scenario(tmp_path))
    run = lambda: run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache",  # noqa: E731
                               decoder=hand_decoder)  # fmt: skip
    first = run()
    before = pd.read_parquet(tmp_path / "out" / "results.parquet")
    again = run()
    assert first.parts_computed == 2 and (again.parts_computed, again.parts_reused) == (0, 2)
    _trace(tmp_path / "up.trace", 4)  # same path, a quarter of the uplink capacity
    changed = run()
    after = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert changed.parts_computed == 2 and changed.parts_reused == 0
    # per-packet delivery (mm-link): a message inside one opportunity is no slower, others are
    assert (after["uplink_ms"] >= before["uplink_ms"]).all()
    assert (after["uplink_ms"] > before["uplink_ms"]).any()


def test_unchanged_inputs_reuse_parts_byte_identical(tmp_path):
    sc = parse_scenario(SCENARIO)
    run_scenario(sc, tmp_path / "a", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    first = (tmp_path / "a" / "results.parquet").read_bytes()
    again = run_scenario(sc, tmp_path / "a", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    assert again.parts_computed == 0 and (tmp_path / "a" / "results.parquet").read_bytes() == first


def test_each_part_records_code_version_dirty_flag_and_digests(tmp_path):
    sc = parse_scenario(_trace_scenario(tmp_path))
    run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache", decoder=hand_decoder)
    metas = sorted((tmp_path / "out" / "parts").glob("*.meta.json"))
    assert len(metas) == 2
    meta = json.loads(metas[0].read_text())
    assert meta["code_version"] == provenance.code_version()
    assert meta["dirty_tree"] in (True, False, None)
    assert meta["capacity_traces"]["uplink_trace"] == provenance.file_digest(tmp_path / "up.trace")
    assert meta["policy"] == "base" and meta["replication"] == 0 and len(meta["trace_key"]) == 24


# ---------------------------------------------------------------------------------------------
# code and package data


def _copy_package(dest: Path) -> Path:
    pkg = dest / "ciarsim"
    shutil.copytree(provenance.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return pkg


def test_code_version_covers_data_files_not_only_python(tmp_path):
    pkg = _copy_package(tmp_path)
    assert provenance.code_version(pkg) == provenance.code_version()
    profile = next((pkg / "data" / "gpu_profiles").glob("*.csv"))
    profile.write_text(profile.read_text() + "\n")
    assert provenance.code_version(pkg) != provenance.code_version()


def test_dirty_tree_outside_git_is_unknown_and_inside_is_told(tmp_path):
    assert provenance.dirty_tree(tmp_path) is None  # not a checkout: never fails
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    assert provenance.dirty_tree(repo) is False
    (repo / "a.py").write_text("x = 2\n")
    assert provenance.dirty_tree(repo) is True


RUN_COPY = """
import sys
sys.path.insert(0, {here!r})
import ciarsim
assert ciarsim.__file__.startswith({pkg!r}), ciarsim.__file__
from test_run import SCENARIO, hand_decoder
from ciarsim.runner.run import run_scenario
from ciarsim.scenario import parse_scenario
out = run_scenario(parse_scenario(SCENARIO), {out!r}, cache_dir={cache!r}, decoder=hand_decoder)
print(out.parts_computed, out.parts_reused)
"""


def test_editing_hardware_json_recomputes(tmp_path):
    """A copy of the package runs the scenario; editing its hardware.json recomputes the parts."""
    pkg = _copy_package(tmp_path / "site")
    out, cache = tmp_path / "out", tmp_path / "cache"
    script = RUN_COPY.format(here=str(HERE), pkg=str(pkg), out=str(out), cache=str(cache))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}

    def run() -> tuple[list[int], pd.DataFrame]:
        proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return [int(x) for x in proc.stdout.split()], pd.read_parquet(out / "results.parquet")

    counts, before = run()
    assert counts == [8, 0]
    assert run()[0] == [0, 8]
    hw_path = pkg / "data" / "hardware.json"
    hw = json.loads(hw_path.read_text())
    for entry in hw["hardware"].values():
        entry["mem_bw_gbps"] = entry["mem_bw_gbps"] / 2
        entry["peak_tflops"] = entry["peak_tflops"] / 2
    hw_path.write_text(json.dumps(hw, indent=2))
    counts, after = run()
    assert counts == [8, 0]
    dev = after["policy"] == "device_only"
    assert (after.loc[dev, "device_compute_ms"] > before.loc[dev, "device_compute_ms"]).all()


# ---------------------------------------------------------------------------------------------
# checkpoints


def _save_model_set(root: Path, scale: float) -> None:
    """A tiny untrained model set (T = 16) on disk; ``scale`` sharpens the cloud's head."""
    from ciarsim.nn.checkpoints import save_checkpoint
    from ciarsim.nn.data import CaptionTokenizer
    from ciarsim.nn.device import DeviceConfig, DeviceModel
    from ciarsim.nn.gpt import GPT, GPTConfig
    from ciarsim.nn.vq import VQConfig, VQModel

    tok = CaptionTokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        vq = VQModel(VQConfig(image_size=16, channels=8, codebook_size=64, code_dim=4))
        cfg = GPTConfig(vocab_size=64, text_vocab_size=tok.vocab_size, cap_len=tok.max_len,
                        grid=4, dim=32, n_layer=2, n_head=2, ffn_hidden=64)  # fmt: skip
        cloud = GPT(cfg)
        device = DeviceModel(DeviceConfig(cloud=cfg, summary_dim=8, phi_hidden=16))
        device.init_from_cloud(cloud)
        with torch.no_grad():
            cloud.lm_head.weight.mul_(scale)
            device.trunk.lm_head.weight.mul_(40.0)
            device.trunk.lm_head.weight.add_(torch.randn_like(device.trunk.lm_head.weight))
    for kind, model in (("tokenizer", vq), ("cloud", cloud), ("device", device)):
        save_checkpoint(model.eval(), root, kind, {})


MODEL_SCENARIO = """
name: models
seed: 3
replications: 1
workload: {{images: 4, token_grid: 4}}
models: {{checkpoints: {root}}}
network: {{capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40}}
policies:
  - {{name: gated, signal: entropy, tau: 1.0, rho: 0.0}}
"""


def real_decoder(policy, workload, models, seed):
    """The registry's decoder on the scenario's checkpoints, without image-quality scoring."""
    from ciarsim.policies import gated

    return gated.decode(policy, workload, models, seed, quality=False)


def test_retraining_a_checkpoint_in_place_recomputes(tmp_path):
    root = tmp_path / "models"
    _save_model_set(root, scale=60.0)
    sc = parse_scenario(MODEL_SCENARIO.format(root=root))
    run = lambda: run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache",  # noqa: E731
                               decoder=real_decoder)  # fmt: skip
    assert run().parts_computed == 1 and run().parts_reused == 1
    before = np.load(tmp_path / "out" / "samples" / "gated-entropy.npz")["tokens"]
    _save_model_set(root, scale=2.0)  # a new cloud in place: its card and weights change
    again = run()
    after = np.load(tmp_path / "out" / "samples" / "gated-entropy.npz")["tokens"]
    assert again.parts_computed == 1 and again.parts_reused == 0
    assert not np.array_equal(before, after)  # the new cloud resamples other tokens


def test_weights_replaced_without_their_card_are_not_reused(tmp_path):
    """Overwriting a weights file while keeping the old card is caught, never served stale."""
    root, other = tmp_path / "models", tmp_path / "other"
    _save_model_set(root, scale=60.0)
    _save_model_set(other, scale=2.0)
    sc = parse_scenario(MODEL_SCENARIO.format(root=root))
    run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache", decoder=real_decoder)
    shutil.copy(other / "cloud.safetensors", root / "cloud.safetensors")
    with pytest.raises(CheckpointError, match="corrupted"):
        run_scenario(sc, tmp_path / "out", cache_dir=tmp_path / "cache", decoder=real_decoder)
