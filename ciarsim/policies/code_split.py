"""``code_split`` (CoDe-style, CVPR 2025, adapted): the cloud generates the first
floor(cloud_fraction * T) tokens, the device the rest, with no verification."""

import math

from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def flow(policy, images, T, seed, models) -> GateFlow:
    return GateFlow(images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
                    prefix=math.floor(policy.cloud_fraction * T))


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
