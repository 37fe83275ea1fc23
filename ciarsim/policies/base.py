"""``base``: cloud-only autoregressive decoding. The phone sends the prompt; the cloud generates all
T tokens and sends them down (one round trip plus T cloud steps). The quality reference."""

from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def flow(policy, images, T, seed, models) -> GateFlow:
    return GateFlow(images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
                    prefix=T)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
