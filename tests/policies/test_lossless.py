"""Lossless policies reproduce the cloud's distribution (standard chi-square tests, fixed seeds).

1,000 images share one caption. At position 0 a policy's token histogram is compared with the
cloud's exact distribution p_0 (``scipy.stats.chisquare``); at position 1 and at a mid-image
position, whose exact marginals are out of reach, with an independent sample of cloud-only
decoding (``scipy.stats.chi2_contingency`` on the 2 x V table). Bins whose expected count is
below 5 are pooled. A policy passes when every p-value > ALPHA = 1e-3.

Power: the same tests reject a synthetic sampler whose distribution is a 15% mixture shift of a
V = 64 distribution at N = 1,000, and the lossy flows (device only; CIAR's flow with tau > 0, which
keeps device tokens unverified) fail them. Seeds are fixed, so every outcome is deterministic.
"""

import numpy as np
import pytest
import torch
from scipy import stats

from ciarsim.nn import gpt
from ciarsim.nn.data import EVAL_SEED, CaptionTokenizer, make_scene
from ciarsim.policies import base, device_only, gated, sd
from ciarsim.scenario.schema import BasePolicy, DeviceOnlyPolicy, GatedPolicy, SDPolicy
from ciarsim.trace import SOURCE_DEVICE_KEPT

N = 1000
CFG = 2.0
ALPHA = 1e-3
MID = 8  # a mid-image position of the tiny models' 16-token images
T = MID + 1  # decoding stops after the last position checked (later ones cannot change it)
MIN_EXPECTED = 5.0


def _pool_sparse(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge the columns (bins) whose smallest expected count is < MIN_EXPECTED into one; if that
    pool is itself too small, fold it into the smallest remaining bin. Arrays are (rows, bins)."""
    sparse = expected.min(axis=0) < MIN_EXPECTED
    obs = np.column_stack([observed[:, ~sparse], observed[:, sparse].sum(axis=1)])
    exp = np.column_stack([expected[:, ~sparse], expected[:, sparse].sum(axis=1)])
    if exp[:, -1].min() < MIN_EXPECTED and obs.shape[1] > 2:
        j = int(np.argmin(exp[:, :-1].min(axis=0)))
        obs[:, j] += obs[:, -1]
        exp[:, j] += exp[:, -1]
        obs, exp = obs[:, :-1], exp[:, :-1]
    keep = exp.min(axis=0) > 0
    return obs[:, keep], exp[:, keep]


def gof_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """p-value of the chi-square goodness of fit of ``counts`` to the exact ``probs``."""
    obs, exp = _pool_sparse(counts[None].astype(float), counts.sum() * probs[None])
    if obs.shape[1] < 2:
        return 1.0
    return float(stats.chisquare(obs[0], exp[0]).pvalue)


def two_sample_p(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the chi-square test that histograms ``a`` and ``b`` share one distribution."""
    table = np.vstack([a, b]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    obs, _ = _pool_sparse(table, expected)
    if obs.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(obs, correction=False).pvalue)


# ---------------------------------------------------------------------------------------------
# the tests have power: a 15% mixture shift over V = 64 at N = 1000


V_SYN = 64
TRIALS = 40


def _synthetic() -> tuple[np.ndarray, np.ndarray]:
    """A peaked distribution p over V_SYN tokens and q = 0.85 p + 0.15 r (r: another one)."""
    p = np.random.default_rng(0).dirichlet(np.full(V_SYN, 0.3))
    r = np.random.default_rng(1).dirichlet(np.full(V_SYN, 0.3))
    return p, 0.85 * p + 0.15 * r


def _hist(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    return np.bincount(rng.choice(len(probs), N, p=probs), minlength=len(probs))


def test_shifted_sampler_is_rejected_and_an_exact_one_accepted():
    p, q = _synthetic()
    rejected = {"same": [0, 0], "shifted": [0, 0]}  # [two-sample, goodness of fit]
    for trial in range(TRIALS):
        rng = np.random.default_rng([2024, trial])
        ref = _hist(rng, p)
        for name, dist in (("same", p), ("shifted", q)):
            x = _hist(rng, dist)
            rejected[name][0] += two_sample_p(x, ref) < ALPHA
            rejected[name][1] += gof_p(x, p) < ALPHA
    # measured over 400 trials: two-sample 96% and goodness of fit 100% of the shifted samples
    # rejected, 0% of the exact ones; the old half-size statistic rejected 0.25% of the shifted
    assert rejected["shifted"][0] >= 0.85 * TRIALS and rejected["shifted"][1] >= 0.95 * TRIALS
    assert rejected["same"] == [0, 0]


def test_two_sample_statistic_is_the_standard_one():
    """On a 2 x K table with no sparse bins, the statistic is sum (O - E)^2 / E over both rows."""
    a, b = np.array([30, 50, 20]), np.array([40, 35, 25])
    table = np.vstack([a, b]).astype(float)
    expected = table.sum(1, keepdims=True) * table.sum(0) / table.sum()
    statistic = ((table - expected) ** 2 / expected).sum()
    assert two_sample_p(a, b) == pytest.approx(stats.chi2.sf(statistic, 2), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# the real flows on tiny models


def _tokens(module, policy, models, cap, seed: int) -> tuple[np.ndarray, np.ndarray]:
    flow = module.flow(policy.model_copy(update={"cfg_scale": CFG}), np.arange(N), T, seed, models)
    traces = flow.run(cap)
    return np.stack([t.tokens for t in traces]), np.stack([t.source for t in traces])


@pytest.fixture(scope="module")
def setting(tiny_models):
    """The caption batch, the exact cloud distribution at position 0, and a cloud-only sample
    (seed 8, independent of the policies' seed 7)."""
    ids = CaptionTokenizer().encode(make_scene(EVAL_SEED, 0).caption)
    cap = torch.tensor([ids] * N)
    with torch.no_grad():
        c = gpt.with_null(cap[:1], tiny_models.cloud.cfg.null_id)
        logits = gpt.prefill(tiny_models.cloud, c, gpt.new_cache(tiny_models.cloud, 2))
        p0 = torch.softmax(gpt.cfg_mix(logits, CFG).double(), -1)[0].numpy()
    ref, _ = _tokens(base, BasePolicy(name="base"), tiny_models, cap, seed=8)
    return cap, p0, ref


def _p_values(toks: np.ndarray, p0: np.ndarray, ref: np.ndarray) -> dict[int, float]:
    """p-value at position 0 (vs exact p_0), 1 and MID (vs the cloud-only sample)."""
    V = len(p0)
    hist = lambda x: np.bincount(x, minlength=V)  # noqa: E731
    out = {0: gof_p(hist(toks[:, 0]), p0)}
    for t in (1, MID):
        out[t] = two_sample_p(hist(toks[:, t]), hist(ref[:, t]))
    return out


def test_cloud_only_sample_matches_the_exact_distribution(setting):
    _, p0, ref = setting
    assert gof_p(np.bincount(ref[:, 0], minlength=len(p0)), p0) > ALPHA


@pytest.mark.parametrize("module, policy", [
    (gated, GatedPolicy(name="gated", signal="interval", tau=0.0, rho=0.0, inject_features=False)),
    (sd, SDPolicy(name="sd", gamma=3)),
], ids=["ciar-flow-tau0-no-injection", "sd"])  # fmt: skip
def test_lossless_policies_match_the_cloud(tiny_models, setting, module, policy):
    cap, p0, ref = setting
    toks, _ = _tokens(module, policy, tiny_models, cap, seed=7)
    p = _p_values(toks, p0, ref)
    assert min(p.values()) > ALPHA, p


def test_device_only_fails(tiny_models, setting):
    cap, p0, ref = setting
    toks, _ = _tokens(device_only, DeviceOnlyPolicy(name="device_only"), tiny_models, cap, seed=7)
    p = _p_values(toks, p0, ref)
    assert max(p.values()) < ALPHA, p


def test_ciar_flow_keeping_device_tokens_fails(tiny_models, setting):
    """tau > 0: tokens kept on the device are never verified, so the output is not the cloud's."""
    cap, p0, ref = setting
    policy = GatedPolicy(name="gated", signal="interval", tau=0.05, rho=0.0)
    toks, source = _tokens(gated, policy, tiny_models, cap, seed=7)
    assert (source[:, 1] == SOURCE_DEVICE_KEPT).mean() > 0.3  # the setting really keeps tokens
    p = _p_values(toks, p0, ref)
    assert p[1] < ALPHA and p[MID] < ALPHA, p
