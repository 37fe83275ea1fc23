"""``cloud_burst`` (k): CIAR where the answer to an uncertain token carries the cloud's decision
plus the cloud's own next ``k`` tokens (sampled as ``base`` would, from the same per-position
random draws), so a round trip settles k + 1 positions. The device ingests them in one pass and
resumes drafting after them. k = 0 is ciar. The cloud pays k more sequential passes per exchange;
the device drafts (and the network carries) fewer uncertain tokens. A ciarsim protocol: it trades
cloud passes for round trips."""

from ciarsim.policies import ciar
from ciarsim.policies.engine import decode_with


def flow(policy, images, T, seed, models):
    return ciar.flow(policy, images, T, seed, models, burst=policy.k)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
