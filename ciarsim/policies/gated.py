"""``gated``: CIAR's flow with a pluggable uncertainty signal (``signals``): the cloud generates
floor(rho * T) prefix tokens; the device drafts the rest; a token whose score >= tau goes to the
cloud for verification. ``inject_features`` adds the interval features of the locally kept run to
the cloud's input (only meaningful with the interval signal; ``ciar`` is that configuration)."""

import math

from ciarsim.policies import signals
from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import GateFlow, sampling_of


def make_gate(policy, images, T, seed, variants=None):
    """The gate function of ``policy.signal`` plus its extra upload (token ids, distributions).
    ``variants``: each signal's CFG variant (the model set's ``cfg_variants``; default guided)."""
    variants = variants or {}
    simple = {"random": signals.random_gate, "interval": signals.interval_gate,
              "entropy": signals.variant_gate("entropy", variants.get("entropy", "guided")),
              "max_prob": signals.variant_gate("max_prob", variants.get("max_prob", "guided"))}  # fmt: skip
    if policy.signal in simple:
        return simple[policy.signal], 0, 0
    if policy.signal == "topk_set":
        return signals.topk_set_gate(policy.k), policy.k, 0
    if policy.signal == "uhlm":
        return signals.uhlm_gate(seed, images, T, policy.samples), 0, 1
    raise ValueError(policy.signal)  # pragma: no cover - the schema restricts the values


def flow(policy, images, T, seed, models) -> GateFlow:
    gate, extra_up, dists_up = make_gate(policy, images, T, seed, getattr(models, "cfg_variants", None))
    return GateFlow(
        images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
        prefix=math.floor(policy.rho * T), gate=gate, tau=policy.tau,
        acceptance=policy.acceptance, inject=policy.inject_features,
        extra_tokens_up=extra_up, dists_up=dists_up,
    )  # fmt: skip


def decode(policy, workload, models_cfg, seed, models=None, quality=True, split="test"):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality, split)
