"""Policies on tiny models: protocol invariants, limits of the gate, determinism, losslessness."""

import math

import numpy as np
import pytest
import torch

from ciarsim.policies import base, ciar, code_split, device_only, gated, lantern, oracle, sd
from ciarsim.scenario.schema import (
    BasePolicy, CiarPolicy, CodeSplitPolicy, DeviceOnlyPolicy, GatedPolicy, LanternPolicy,
    ModelsConfig, OraclePolicy, SDPolicy, WorkloadConfig,
)  # fmt: skip
from ciarsim.trace import (
    OP_CLOUD, OP_DEVICE, SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT,
    SOURCE_DEVICE_VERIFIED,
)  # fmt: skip

T = 16
WORKLOAD = WorkloadConfig(images=8, token_grid=4)
MODELS = ModelsConfig()


def decode(module, policy, models, seed=0, workload=WORKLOAD):
    return module.decode(policy, workload, MODELS, seed, models=models, quality=False)


def ops_of(ts, i):
    return ts.image(i).ops


def test_base_is_one_cloud_exchange(tiny_models):
    ts = decode(base, BasePolicy(name="base"), tiny_models)
    for i in range(len(ts)):
        ops = ops_of(ts, i)
        assert len(ops) == 1 and ops[0]["kind"] == OP_CLOUD
        assert ops[0]["prompt_up"] == 1 and ops[0]["tokens_down"] == T and ops[0]["steps"] == T - 1
    assert (ts.source == SOURCE_CLOUD).all()


def test_device_only_never_talks_to_the_cloud(tiny_models):
    ts = decode(device_only, DeviceOnlyPolicy(name="device_only"), tiny_models)
    assert not (ts.ops["kind"] == OP_CLOUD).any()
    assert (ts.source == SOURCE_DEVICE_KEPT).all()
    assert np.isfinite(ts.u).all()  # the Inter-Head's U is recorded for token maps


def test_code_split_prefix(tiny_models):
    ts = decode(code_split, CodeSplitPolicy(name="code_split", cloud_fraction=0.5), tiny_models)
    m = T // 2
    assert (ts.source[:, :m] == SOURCE_CLOUD).all() and (ts.source[:, m:] == SOURCE_DEVICE_KEPT).all()
    assert ts.image(0).cloud_calls == 1


def test_tau_infinity_is_device_only_and_tau_zero_verifies_every_token(tiny_models):
    dev = decode(device_only, DeviceOnlyPolicy(name="device_only"), tiny_models)
    never = decode(gated, GatedPolicy(name="gated", tau=math.inf, rho=0.0), tiny_models)
    assert np.array_equal(never.tokens, dev.tokens)
    assert not (never.ops["kind"] == OP_CLOUD).any()
    always = decode(gated, GatedPolicy(name="gated", tau=0.0, rho=0.0), tiny_models)
    for i in range(len(always)):
        assert always.image(i).cloud_calls == T
    assert not (always.source == SOURCE_DEVICE_KEPT).any()


@pytest.mark.parametrize("signal", ["random", "entropy", "max_prob", "topk_set", "uhlm", "interval"])
def test_gated_protocol_accounts_for_every_token(tiny_models, signal):
    policy = GatedPolicy(name="gated", signal=signal, tau=0.5 if signal == "random" else 0.1,
                         rho=0.25, k=4, samples=5)
    ts = decode(gated, policy, tiny_models)
    m = math.floor(0.25 * T)
    for i in range(len(ts)):
        tr = ts.image(i)
        cloud = tr.ops[tr.ops["kind"] == OP_CLOUD]
        dev = tr.ops[tr.ops["kind"] == OP_DEVICE]
        sent = np.isin(tr.source, [SOURCE_DEVICE_VERIFIED, SOURCE_CLOUD_RESAMPLED])
        assert len(cloud) == 1 + sent.sum()  # the prefix exchange + one call per sent token
        assert (cloud["changed"][1:] == tr.source[sent].astype(int) - 2).all()
        # the device makes one pass per token it decides (its first pass also ingests the prefix)
        assert dev["steps"].sum() == T - m
        last_sent = np.flatnonzero(sent).max() if sent.any() else m - 1
        extra = {"topk_set": 4}.get(signal, 0)
        assert cloud["tokens_up"][1:].sum() == (last_sent + 1 - m) + extra * sent.sum()
        assert (cloud["dists_up"][1:] == (1 if signal == "uhlm" else 0)).all()
        assert np.isfinite(tr.u[m:]).all()


def test_ciar_uploads_features_of_the_kept_run(tiny_models):
    ts = decode(ciar, CiarPolicy(name="ciar", tau=0.05, rho=0.0), tiny_models)
    for i in range(len(ts)):
        tr = ts.image(i)
        cloud = tr.ops[tr.ops["kind"] == OP_CLOUD]
        kept_before_last_call = 0
        sent = np.flatnonzero(tr.source != SOURCE_DEVICE_KEPT)
        if len(sent):
            kept_before_last_call = (tr.source[: sent.max()] == SOURCE_DEVICE_KEPT).sum()
        assert cloud["features_up"].sum() == kept_before_last_call


def test_injection_changes_the_cloud_only_through_phi(tiny_models):
    plain = decode(gated, GatedPolicy(name="gated", tau=0.05, rho=0.0), tiny_models)
    injected = decode(gated, GatedPolicy(name="gated", tau=0.05, rho=0.0, inject_features=True),
                      tiny_models)
    assert not np.array_equal(plain.tokens, injected.tokens)  # phi is non-zero in the fixture


def test_oracle_sends_exactly_what_the_cloud_changes(tiny_models):
    ts = decode(oracle, OraclePolicy(name="oracle", rho=0.0), tiny_models)
    assert not (ts.source == SOURCE_DEVICE_VERIFIED).any()
    assert (ts.source == SOURCE_CLOUD_RESAMPLED).any()


@pytest.mark.parametrize("module,policy", [
    (sd, SDPolicy(name="sd", gamma=3)),
    (lantern, LanternPolicy(name="lantern", gamma=3, k=8, delta=0.2)),
])  # fmt: skip
def test_speculative_rounds(tiny_models, module, policy):
    ts = decode(module, policy, tiny_models)
    for i in range(len(ts)):
        tr = ts.image(i)
        cloud = tr.ops[tr.ops["kind"] == OP_CLOUD]
        dev = tr.ops[tr.ops["kind"] == OP_DEVICE]
        assert (tr.source != SOURCE_DEVICE_KEPT).all()  # every token is verified
        assert cloud["prompt_up"][0] == 1 and dev["prompt_up"][0] == 1
        assert (cloud["tokens_up"] <= 3).all()
        assert cloud["changed"].sum() == (tr.source == SOURCE_CLOUD_RESAMPLED).sum()


def test_traces_are_deterministic_and_batch_independent(tiny_models):
    p = CiarPolicy(name="ciar", tau=0.1, rho=0.125)
    a = decode(ciar, p, tiny_models)
    b = decode(ciar, p, tiny_models)
    assert a.digest() == b.digest()
    alone = decode(ciar, p, tiny_models, workload=WorkloadConfig(images=1, prompt_start=3,
                                                                   token_grid=4))
    assert np.array_equal(alone.tokens[0], a.tokens[3])
    assert np.array_equal(alone.image(0).ops, a.image(3).ops)
    c = decode(ciar, p, tiny_models, seed=1)
    assert not np.array_equal(c.tokens, a.tokens)


def test_calibrated_thresholds_hit_the_send_rate(tiny_models):
    from ciarsim.policies.calibrate import signal_thresholds

    wl = WorkloadConfig(images=16, token_grid=4)
    taus = signal_thresholds(["entropy", "interval"], [0.2, 0.5], wl, MODELS, 0, rho=0.0,
                             models=tiny_models)
    for signal, (t20, t50) in taus.items():
        assert t20 >= t50
        ts = decode(gated, GatedPolicy(name="gated", signal=signal, tau=t50, rho=0.0), tiny_models,
                    workload=wl)
        share = (ts.source != SOURCE_DEVICE_KEPT).mean()
        assert 0.3 < share < 0.7, (signal, share)


def test_quality_is_scored_with_the_model_sets_own_classifier(tiny_models, tmp_path, monkeypatch):
    """attach_quality loads ``classifier.safetensors`` from the folder the set came from."""
    from dataclasses import replace

    from ciarsim.nn import quality
    from ciarsim.policies.engine import attach_quality, load_prompts
    from ciarsim.trace import OP_DTYPE, TraceSet

    (tmp_path / "classifier.safetensors").write_bytes(b"stand-in")
    seen = {}
    monkeypatch.setattr(quality, "load_classifier", lambda path=None, device="cpu": seen.setdefault("path", path))
    monkeypatch.setattr(quality, "caption_consistency_per_image",
                        lambda imgs, caps, clf=None: seen.setdefault("clf", clf) and [0.5] * len(caps))
    monkeypatch.setattr(quality, "frechet_distance", lambda a, b, clf=None: quality.FDResult(1.0, len(a), len(b)))
    models = replace(tiny_models, root=tmp_path)
    pr = load_prompts(0, 2, models.cloud.cfg.cap_len)
    ts = TraceSet(np.arange(2), np.zeros(3, np.int64), np.zeros(0, OP_DTYPE), np.zeros((2, 16), np.int32),
                  np.zeros((2, 16), np.float32), np.zeros((2, 16), np.uint8), {})
    out = attach_quality(ts, pr, models)
    assert seen["path"] == tmp_path / "classifier.safetensors" and seen["clf"] == seen["path"]
    assert out.meta["quality"]["caption_consistency"] == [0.5, 0.5]
