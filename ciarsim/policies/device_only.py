"""``device_only``: the one-layer device model alone, no network. Lower bound on network use and
the quality floor CIAR tries to lift."""

from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def flow(policy, images, T, seed, models) -> GateFlow:
    return GateFlow(images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
                    prefix=0)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
