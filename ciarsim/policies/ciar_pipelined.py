"""``ciar_pipelined``: CIAR whose device keeps drafting while a verification is in flight.

After sending an uncertain token the device drafts up to ``window`` more tokens (stopping at the
next uncertain one), assuming the cloud keeps its draft. Kept: nothing stalls beyond the round
trip the drafting did not cover. Replaced: the drafts are thrown away (charged as wasted device
work) and redrafted. The decisions are ciar's, token for token (same seed, same tokens); only the
arrangement of the exchanges differs (``schedule.pipelined``). Idea after PEARL's pre-verify
(Liu et al., ICLR 2025, arXiv 2408.11850) and edge pre-drafting (Venkatesha et al., arXiv
2505.21594); here with at most one request in flight, so no request is built on a guess.
"""

from functools import partial

from ciarsim.policies import ciar
from ciarsim.policies.engine import decode_with
from ciarsim.policies.schedule import pipelined


def flow(policy, images, T, seed, models):
    return ciar.flow(policy, images, T, seed, models, schedule=partial(pipelined, window=policy.window))


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
