"""Lossless policies reproduce the cloud's distribution (statistical test, fixed seeds).

1,000 images share one caption. At position 0 every policy's token histogram is compared with the
cloud's exact distribution p_0 (chi-square goodness of fit, bins with expected count < 5 pooled);
at position 1 (which depends on position 0) the histogram is compared with base's (two-sample
chi-square). Tolerance: p-value > 1e-3. The device alone, whose distribution differs, must fail
the same test, which shows the test has power. Seeds are fixed, so the outcome is deterministic.
"""

import math

import numpy as np
import torch

from ciarsim.nn import gpt
from ciarsim.nn.data import EVAL_SEED, CaptionTokenizer, make_scene
from ciarsim.policies import base, device_only, gated, sd
from ciarsim.scenario.schema import BasePolicy, DeviceOnlyPolicy, GatedPolicy, SDPolicy

N = 1000
CFG = 2.0


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of chi-square via the Wilson-Hilferty normal approximation."""
    z = ((x / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _gof(counts: np.ndarray, expected: np.ndarray) -> float:
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    stat = ((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()
    return _chi2_sf(stat, int(keep.sum()) - 1)


def _two_sample(a: np.ndarray, b: np.ndarray) -> float:
    pooled = (a + b) / 2
    return _gof(a, pooled) if pooled.sum() else 1.0


def _run(module, policy, models, cap):
    flow = module.flow(policy.model_copy(update={"cfg_scale": CFG}), np.arange(N), 16, 7, models)
    return np.stack([t.tokens for t in flow.run(cap)])


def test_lossless_policies_match_the_cloud(tiny_models):
    tok = CaptionTokenizer()
    ids = tok.encode(make_scene(EVAL_SEED, 0).caption)
    cap = torch.tensor([ids] * N)
    with torch.no_grad():
        c = gpt.with_null(cap[:1], tiny_models.cloud.cfg.null_id)
        logits = gpt.prefill(tiny_models.cloud, c, gpt.new_cache(tiny_models.cloud, 2))
        p0 = torch.softmax(gpt.cfg_mix(logits, CFG).double(), -1)[0].numpy()
    V = len(p0)
    hist = lambda x: np.bincount(x, minlength=V).astype(float)  # noqa: E731

    ref = _run(base, BasePolicy(name="base"), tiny_models, cap)
    assert _gof(hist(ref[:, 0]), N * p0) > 1e-3
    for module, policy in [
        (gated, GatedPolicy(name="gated", tau=0.0, rho=0.0)),
        (sd, SDPolicy(name="sd", gamma=3)),
    ]:
        toks = _run(module, policy, tiny_models, cap)
        assert _gof(hist(toks[:, 0]), N * p0) > 1e-3, policy.name
        assert _two_sample(hist(toks[:, 1]), hist(ref[:, 1])) > 1e-3, policy.name
    dev = _run(device_only, DeviceOnlyPolicy(name="device_only"), tiny_models, cap)
    assert _gof(hist(dev[:, 0]), N * p0) < 1e-3  # power: a different distribution is caught
