"""``oracle``: an upper bound, not a method. After the same cloud prefix as CIAR, exactly the tokens
the cloud would replace (same acceptance rule, same random draws) go to the cloud; every other
token is kept. Shows how far any uncertainty signal is from perfect gating."""

import math

from ciarsim.policies import signals
from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def flow(policy, images, T, seed, models) -> GateFlow:
    return GateFlow(
        images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
        prefix=math.floor(policy.rho * T), gate=signals.oracle_gate("speculative"), tau=0.5,
    )  # fmt: skip


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
