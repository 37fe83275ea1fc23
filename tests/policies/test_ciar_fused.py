"""The ``ciar_fused`` plugin protocol (experiments/ciar_fused.py): CIAR's tokens, one answer per
window, the device never waiting inside a window when it streams."""

import sys
from pathlib import Path

import numpy as np
import pytest

from ciarsim.policies import ciar, plugin
from ciarsim.policies.engine import load_prompts
from ciarsim.policies.schedule import windows
from ciarsim.scenario.schema import CiarPolicy, Scenario
from ciarsim.trace import DEP_NONE, OP_CLOUD, OP_DEVICE, SOURCE_CLOUD_RESAMPLED, check_deps

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
TAU, RHO, T = 0.02, 0.125, 16  # the tiny device sends about half its tokens at this tau


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    yield
    sys.modules.pop("ciar_fused", None)


def _decode(entry: dict, models, n=6, seed=3, greedy=False):
    pr = load_prompts(0, n, models.cloud.cfg.cap_len)
    pol = Scenario.model_validate({"policies": [{**entry, "greedy": greedy}]}).policies[0]
    if pol.name == "ciar":
        return ciar.flow(pol, pr.images, T, seed, models).run(pr.cap_ids)
    proto = plugin.make(pol)
    if greedy:  # the plugin builds its own ciar config: give it the same sampling
        proto.policy = CiarPolicy(name="ciar", tau=TAU, rho=RHO, greedy=True)
    return proto.flow(pr.images, T, seed, models).run(pr.cap_ids)


def _first_replaced(r, s, e):
    hit = np.flatnonzero((r.source == SOURCE_CLOUD_RESAMPLED)[s:e])
    return s + int(hit[0]) if len(hit) else None


@pytest.mark.parametrize("params", [{}, {"stream": True}, {"window": 5}, {"window": 5, "stream": True}])
def test_tokens_equal_ciar_with_one_answer_per_window(on_path, tiny_models, params):
    ref = _decode({"name": "ciar", "tau": TAU, "rho": RHO}, tiny_models)
    out = _decode({"name": "ciar_fused:CiarFused", "tau": TAU, "rho": RHO, **params}, tiny_models)
    w, prefix = params.get("window", 0), int(RHO * T)
    replaced = 0
    for a, b in zip(ref, out):
        assert (a.tokens == b.tokens).all() and (a.source == b.source).all()
        assert check_deps(b.ops) is None
        cloud = b.ops[(b.ops["kind"] == OP_CLOUD) & (b.ops["wasted"] == 0)]
        spans = windows(prefix, T, w, 4 if w == 0 else 0, 0)
        flagged = [np.flatnonzero(b.source[s:e] >= 2) + s for s, e in spans]
        if not params.get("stream"):  # the prefix request, then one message per flagged window
            assert len(cloud) == 1 + sum(len(f) > 0 for f in flagged)
        else:  # one message per flagged position up to the window's first replacement
            firsts = [_first_replaced(b, s, e) for s, e in spans]
            expect = sum(int((f <= (j if j is not None else T)).sum()) for f, j in zip(flagged, firsts))
            assert len(cloud) == 1 + expect
            stale = b.ops[(b.ops["kind"] == OP_CLOUD) & (b.ops["wasted"] == 1)]
            assert len(stale) == sum(len(f) for f in flagged) - expect
            assert (stale["steps"] == 0).all() and (stale["tokens_down"] == 0).all()
            replaced += sum(j is not None for j in firsts)
    if params.get("stream"):
        assert replaced > 0  # windows were finished by the cloud


def test_streamed_drafts_never_wait_for_an_answer(on_path, tiny_models):
    out = _decode({"name": "ciar_fused:CiarFused", "tau": TAU, "rho": RHO, "stream": True}, tiny_models)
    for r in out:
        ops = r.ops
        for i in range(1, len(ops)):
            if ops["kind"][i] == OP_DEVICE and ops["kind"][i - 1] == OP_CLOUD and ops["steps"][i] > 0:
                # a draft right after a request is issued without waiting for its answer
                assert ops["dep"][i] == DEP_NONE or ops["new_tokens"][i] > 1


def test_blind_drafts_past_the_window_are_checked(on_path, tiny_models):
    """lag > 0 with greedy sampling: the check keeps a blind draft only if the corrected device
    would have drawn it, so the tokens equal lag 0's (= ciar's)."""
    kw = {"name": "ciar_fused:CiarFused", "tau": TAU, "rho": RHO}
    wait = _decode(kw, tiny_models, greedy=True)
    ahead = _decode({**kw, "lag": 2}, tiny_models, greedy=True)
    ref = _decode({"name": "ciar", "tau": TAU, "rho": RHO}, tiny_models, greedy=True)
    for a, b, c in zip(wait, ahead, ref):
        assert (a.tokens == b.tokens).all() and (a.tokens == c.tokens).all()
        assert check_deps(b.ops) is None
    blind = sum(int(((r.ops["kind"] == OP_DEVICE) & (r.ops["dep"] == DEP_NONE)).sum()) for r in ahead)
    assert blind > len(ahead)  # drafts past windows, beyond the opening's prefill


def test_device_share_counts_the_cloud_finished_tails(on_path, tiny_models):
    from ciar_fused import device_drafted_share

    out = _decode({"name": "ciar_fused:CiarFused", "tau": TAU, "rho": RHO}, tiny_models)
    prefix = int(RHO * T)
    for r in out:
        phone = 0  # positions drafted by the phone and final: before each window's first replacement
        for s, e in windows(prefix, T, 0, 4, 0):
            j = _first_replaced(r, s, e)
            phone += (e if j is None else j) - s
        share = device_drafted_share(r, prefix, 0, 4)
        assert share == pytest.approx(phone / T)
        assert 0 <= share < 1 - prefix / T or phone == T - prefix


def test_bad_draft_cost_is_refused(on_path):
    with pytest.raises(Exception, match="draft_cost"):
        plugin.make(Scenario.model_validate({"policies": [
            {"name": "ciar_fused:CiarFused", "tau": TAU, "draft_cost": "cheap"}]}).policies[0])
