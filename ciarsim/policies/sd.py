"""``sd``: speculative decoding (Leviathan et al. 2023; Chen et al. 2023) with the one-layer device
model as drafter: gamma drafts per round, verified in one cloud pass with the exact rule, residual
resampling at the first rejection, a bonus token when all pass. Lossless. ``upload_full_q``
also uploads the device's full distribution for each draft (needed by a cloud that resamples from
the residual without re-running the drafter)."""

from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import SpecFlow, sampling_of


def flow(policy, images, T, seed, models) -> SpecFlow:
    return SpecFlow(images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
                    gamma=policy.gamma, upload_full_q=policy.upload_full_q)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
