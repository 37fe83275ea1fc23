"""Network-aware protocols: same decisions as ciar where promised, and schedules whose ops
account for every position exactly once (tiny models, T = 16, rows of 4)."""

import dataclasses

import numpy as np
import pytest

from ciarsim.policies import ciar, ciar_batched, ciar_pipelined, cloud_burst
from ciarsim.policies.engine import load_prompts
from ciarsim.policies.schedule import GateRun, batched, checked_spans, pipelined, relaxed, stop_and_wait
from ciarsim.scenario.schema import (
    CiarBatchedPolicy, CiarPipelinedPolicy, CiarPolicy, CloudBurstPolicy,
)  # fmt: skip
from ciarsim.trace import OP_CLOUD, OP_DEVICE, OP_DTYPE, SOURCE_CLOUD, check_deps

TAU, RHO = 0.02, 0.125  # the tiny device sends about half its tokens at this tau


def _decode(module, policy, models, n=6, seed=3):
    pr = load_prompts(0, n, models.cloud.cfg.cap_len)
    return module.flow(policy, pr.images, 16, seed, models).run(pr.cap_ids)


@pytest.fixture(scope="module")
def ciar_ref(tiny_models):
    return _decode(ciar, CiarPolicy(name="ciar", tau=TAU, rho=RHO), tiny_models)


@pytest.mark.parametrize("policy", [
    CiarPipelinedPolicy(name="ciar_pipelined", tau=TAU, rho=RHO, window=0),
    CiarPipelinedPolicy(name="ciar_pipelined", tau=TAU, rho=RHO, window=3),
    CiarPipelinedPolicy(name="ciar_pipelined", tau=TAU, rho=RHO, window=100),
    CiarBatchedPolicy(name="ciar_batched", tau=TAU, rho=RHO),
    CiarBatchedPolicy(name="ciar_batched", tau=TAU, rho=RHO, window=5),
    CloudBurstPolicy(name="cloud_burst", tau=TAU, rho=RHO, k=0),
], ids=lambda p: f"{p.display}-{getattr(p, 'window', getattr(p, 'k', ''))}")
def test_exact_protocols_give_ciars_tokens(tiny_models, ciar_ref, policy):
    module = {"ciar_pipelined": ciar_pipelined, "ciar_batched": ciar_batched,
              "cloud_burst": cloud_burst}[policy.name]  # fmt: skip
    out = _decode(module, policy, tiny_models)
    sent = sum(int(np.count_nonzero(r.source >= 2)) for r in ciar_ref)
    assert sent > 10  # the comparison is not vacuous
    for a, b in zip(out, ciar_ref):
        assert (a.tokens == b.tokens).all() and (a.source == b.source).all()
        assert check_deps(a.ops) is None


def test_batching_and_bursts_cut_round_trips(tiny_models, ciar_ref):
    calls = sum(r.cloud_calls for r in ciar_ref)
    exact = _decode(ciar_batched, CiarBatchedPolicy(name="ciar_batched", tau=TAU, rho=RHO), tiny_models)
    assert sum(r.cloud_calls for r in exact) < calls
    burst = _decode(cloud_burst, CloudBurstPolicy(name="cloud_burst", tau=TAU, rho=RHO, k=2), tiny_models)
    assert sum(r.cloud_calls for r in burst) < calls
    for r in burst:  # the k tokens after each verified position are the cloud's own
        sent = np.flatnonzero(r.source >= 2)
        for u in sent[sent < 14]:
            assert (r.source[u + 1:u + 3] == SOURCE_CLOUD).all()


def test_relaxed_batching_is_a_deterministic_lossy_decode(tiny_models, ciar_ref):
    pol = CiarBatchedPolicy(name="ciar_batched", tau=TAU, rho=RHO, mode="relaxed")
    a, b = _decode(ciar_batched, pol, tiny_models), _decode(ciar_batched, pol, tiny_models)
    assert all((x.tokens == y.tokens).all() and (x.ops == y.ops).all() for x, y in zip(a, b))
    assert any((x.tokens != y.tokens).any() for x, y in zip(a, ciar_ref))  # lossy: differs
    for r in a:  # one exchange per row window holding an uncertain token, after the prefix's
        flagged = r.source >= 2
        rows_with = sum(bool(flagged[s:s + 4].any()) for s in range(0, 16, 4))
        assert r.cloud_calls == 1 + rows_with


def _runs(n=40, T=32, m=2, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        send = rng.random(T) < rng.uniform(0.05, 0.6)
        send[:m] = False
        changed = send & (rng.random(T) < 0.7)
        yield GateRun(T, m, send, changed, inject=True)


def _device_steps(ops, wasted):
    """Single-token device draft steps (the opening's prefill/ingest and re-ingests excluded)."""
    dev = ops[(ops["kind"] == OP_DEVICE) & (ops["new_tokens"] == 1) & (ops["prompt_up"] == 0)]
    return int(dev["steps"][dev["wasted"] == int(wasted)].sum())


@pytest.mark.parametrize("schedule", [stop_and_wait, lambda r: pipelined(r, 4),
                                      lambda r: batched(r, rows_of=8), lambda r: batched(r, window=5)],
                         ids=["stop_and_wait", "pipelined", "batched-rows", "batched-5"])
def test_exact_schedules_decide_every_sent_position_once(schedule):
    for run in _runs():
        ops = np.array(schedule(run), OP_DTYPE)
        assert check_deps(ops) is None
        cloud = ops[ops["kind"] == OP_CLOUD]
        assert int(cloud["decided"].sum()) == run.prefix + int(run.send.sum())
        assert _device_steps(ops, wasted=False) == run.T - run.prefix - 1  # each final draft once
        assert int(cloud["changed"][1:].sum()) <= int(run.changed.sum())


def test_pipelined_wastes_exactly_the_lookahead_after_replaced_tokens():
    T, m, W = 20, 0, 3
    send = np.zeros(T, bool)
    send[[5, 12]] = True
    changed = np.zeros(T, bool)
    changed[5] = True
    ops = np.array(pipelined(GateRun(T, m, send, changed), W), OP_DTYPE)
    assert _device_steps(ops, wasted=True) == W  # drafts 6..8 thrown away after 5 was replaced
    assert _device_steps(ops, wasted=False) == T - 1
    no_wait = np.array(pipelined(GateRun(T, m, send, changed), 0), OP_DTYPE)
    sw = np.array(stop_and_wait(GateRun(T, m, send, changed)), OP_DTYPE)
    cols = ["kind", "steps", "new_tokens", "context", "tokens_up", "decided"]
    real = no_wait[~((no_wait["kind"] == OP_DEVICE) & (no_wait["steps"] == 0) & (no_wait["prompt_up"] == 0))]
    assert real[cols].tolist() == sw[cols].tolist()  # window 0 = stop-and-wait plus joins


def test_batched_exact_by_hand():
    """Row of 8 from position 0: flags at 2 (kept) and 5 (replaced) -> one message deciding both;
    drafts 6, 7 wasted; the rest of the row (6, 7) is drafted again and has no flags."""
    T = 8
    send = np.zeros(T, bool)
    send[[2, 5]] = True
    changed = np.zeros(T, bool)
    changed[5] = True
    ops = np.array(batched(GateRun(T, 0, send, changed, inject=True), rows_of=8), OP_DTYPE)
    cloud = ops[ops["kind"] == OP_CLOUD]
    assert len(cloud) == 1
    c = cloud[0]
    assert (c["decided"], c["changed"], c["tokens_up"], c["new_tokens"]) == (2, 1, 8, 7)
    assert c["features_up"] == (6 - 2) + 2  # unflagged final drafts 0,1,3,4 + the discarded 6, 7
    assert _device_steps(ops, wasted=True) == 2 and _device_steps(ops, wasted=False) == T - 1


def test_relaxed_schedule_one_message_per_flagged_window():
    for run in _runs(T=32, m=0):
        ops = np.array(relaxed(run, rows_of=8), OP_DTYPE)
        assert check_deps(ops) is None
        cloud = ops[ops["kind"] == OP_CLOUD]
        assert len(cloud) == sum(bool(run.send[s:s + 8].any()) for s in range(0, 32, 8))
        assert int(cloud["decided"].sum()) == int(run.send.sum())
        # one pass per window, plus one per replacement that a later flagged position follows
        # (the cloud decides each position on the final tokens before it)
        for (s, e), op in zip([(s, s + 8) for s in range(0, 32, 8) if run.send[s:s + 8].any()], cloud):
            flagged = np.flatnonzero(run.send[s:e]) + s
            assert op["steps"] == 1 + int(run.changed[flagged[:-1]].sum())


def test_relaxed_lag_overlaps_the_answer_and_stays_consistent(tiny_models):
    pol = CiarBatchedPolicy(name="ciar_batched", tau=TAU, rho=RHO, mode="relaxed", window=6, lag=2)
    out = _decode(ciar_batched, pol, tiny_models)
    for r in out:
        assert check_deps(r.ops) is None
        dev = r.ops[r.ops["kind"] == OP_DEVICE]
        assert (dev["dep"] == -1).sum() >= 2  # the opening's prefill and at least one blind draft
    for run in _runs(T=32, m=3):
        ops = np.array(relaxed(run, window=6, lag=2), OP_DTYPE)
        assert check_deps(ops) is None
        assert int(ops[ops["kind"] == OP_CLOUD]["decided"].sum()) == run.prefix + int(run.send.sum())


def test_checked_lag_gives_lag0_tokens_under_greedy_sampling(tiny_models):
    """lag_check keeps a blind draft only if the corrected device would have drawn it: with greedy
    sampling that is token-identical to waiting for the answer (lag 0)."""
    kw = {"name": "ciar_batched", "tau": TAU, "rho": RHO, "mode": "relaxed", "greedy": True}
    wait = _decode(ciar_batched, CiarBatchedPolicy(**kw), tiny_models)
    checked = _decode(ciar_batched, CiarBatchedPolicy(**kw, lag=2, lag_check=True), tiny_models)
    assert sum(int((r.source == 3).sum()) for r in wait) > 0  # windows changed: blind drafts were checked
    wasted = 0
    for a, b in zip(wait, checked):
        assert (a.tokens == b.tokens).all() and (a.source == b.source).all()
        assert check_deps(b.ops) is None and b.cloud_calls == a.cloud_calls
        wasted += _device_steps(b.ops, wasted=True)
    assert wasted > 0  # some blind drafts failed the check and were redrafted


def test_checked_lag_with_sampling_is_a_valid_decode(tiny_models):
    kw = {"name": "ciar_batched", "tau": TAU, "rho": RHO, "mode": "relaxed", "lag": 2, "lag_check": True}
    for pol in (CiarBatchedPolicy(**kw), CiarBatchedPolicy(**kw, lag_delta=0.4, lag_k=8)):
        a, b = _decode(ciar_batched, pol, tiny_models), _decode(ciar_batched, pol, tiny_models)
        for x, y in zip(a, b):
            assert (x.tokens == y.tokens).all() and (x.ops == y.ops).all()  # deterministic
            assert check_deps(x.ops) is None
            cloud = x.ops[x.ops["kind"] == OP_CLOUD]
            assert int(cloud["decided"].sum()) == RHO * 16 + int((x.source >= 2).sum())


def test_checked_lag_schedule_wastes_the_blind_drafts_from_a_miss():
    rng = np.random.default_rng(1)
    for run in _runs(T=32, m=2):
        spans = checked_spans(run.prefix, run.T, 0, 8, 3)
        clean = dataclasses.replace(run, lag_miss=np.zeros(run.T, bool))
        ref = np.array(relaxed(clean, rows_of=8, lag=3), OP_DTYPE)
        assert ref.tolist() == np.array(relaxed(run, rows_of=8, lag=3), OP_DTYPE).tolist()  # no miss: as blind
        miss = rng.random(run.T) < 0.3
        ops = np.array(relaxed(dataclasses.replace(run, lag_miss=miss), rows_of=8, lag=3), OP_DTYPE)
        assert check_deps(ops) is None
        expect, first_missed = 0, 0
        for s, e, ahead in spans:
            if ahead and run.changed[s:e].any():
                r = next((p for p in range(e, e + ahead) if miss[p]), e + ahead)
                expect += e + ahead - max(r, e + 1)
                first_missed += r == e
        assert _device_steps(ops, wasted=True) == expect
        # each final draft once; a miss at the window's first blind position costs one more step
        # (that position's draft came with the message's last step; the check's pass redoes it)
        assert _device_steps(ops, wasted=False) == _device_steps(ref, wasted=False) + first_missed
        assert ops[ops["kind"] == OP_CLOUD].tolist() == ref[ref["kind"] == OP_CLOUD].tolist()


def test_lag_check_options_need_their_base_options():
    with pytest.raises(ValueError, match="lag_check needs lag"):
        CiarBatchedPolicy(name="ciar_batched", mode="relaxed", lag_check=True)
    with pytest.raises(ValueError, match="lag_delta applies with lag_check"):
        CiarBatchedPolicy(name="ciar_batched", mode="relaxed", lag=4, lag_delta=0.4)
