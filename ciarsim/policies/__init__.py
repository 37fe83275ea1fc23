"""Decoding policies: they run the real models over prompts and emit decode traces (``ciarsim.trace``).
May import: torch, numpy, ciarsim.nn, ciarsim.scenario, ciarsim.trace, io, errors; never sim, runner, report or cli.

Each policy is one module with one entry point, registered here by its scenario name. A policy
that is not registered is not built yet: asking for it raises ``MissingComponentError`` naming
what is missing, never a made-up trace.
"""

from __future__ import annotations

from typing import Callable

from ciarsim.errors import MissingComponentError

# name -> decode(policy_config, workload, models_config, seed, models=None) -> TraceSet.
REGISTRY: dict[str, Callable] = {}
FLOWS: dict[str, Callable] = {}  # name -> flow(policy, images, T, seed, models)


def _register() -> None:
    from ciarsim.policies import (  # noqa: PLC0415
        base, ciar, ciar_batched, ciar_pipelined, cloud_burst, code_split, device_only, gated,
        lantern, oracle, plugin, sd,
    )  # fmt: skip

    for module in (base, device_only, sd, lantern, code_split, gated, ciar, ciar_pipelined,
                   ciar_batched, cloud_burst, oracle, plugin):  # fmt: skip
        REGISTRY[module.__name__.rsplit(".", 1)[1]] = module.decode
        FLOWS[module.__name__.rsplit(".", 1)[1]] = module.flow


_register()


def get_decoder(name: str) -> Callable:
    """The decode function of policy ``name``, or a clear error if it is not implemented yet."""
    try:
        return REGISTRY[name]
    except KeyError:
        built = ", ".join(sorted(REGISTRY)) or "none yet"
        raise MissingComponentError(
            f"policy '{name}' is not implemented yet (implemented: {built}); the decoding "
            "policies are tracked in the issue 'Decoding policies: CIAR and every baseline'"
        ) from None


def decode_split(policy, workload, models_cfg, seed: int, split: str, models=None):
    """Decode ``workload``'s prompts of ``split`` (``ciarsim.nn.splits``) with ``policy``: how
    selection code (``adaptive``'s predictions) reads validation prompts. ``models``: the loaded
    decision models (None: load ``models_cfg.checkpoints``)."""
    from ciarsim.policies.engine import decode_with  # noqa: PLC0415

    get_decoder(policy.name)  # a clear error for an unknown policy
    return decode_with(FLOWS[policy.name], policy, workload, models_cfg, seed, models=models, split=split)
