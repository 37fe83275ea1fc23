"""``ciar``: the paper's full method -- ``gated`` with CIAR's interval signal U and the interval
features of the locally kept run injected into the cloud's input embeddings during verification.
(``gated`` with ``signal: interval`` and no injection is its ablation.)"""

import math

from ciarsim.policies import signals
from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def flow(policy, images, T, seed, models, cls=GateFlow, **kw) -> GateFlow:
    """CIAR's gated flow (``cls`` and ``kw``: a variant's flow class and its extra arguments)."""
    return cls(
        images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
        prefix=math.floor(policy.rho * T), gate=signals.interval_gate, tau=policy.tau,
        acceptance=policy.acceptance, inject=True, **kw,
    )  # fmt: skip


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
