"""Protocols written outside the package, run by naming them in a scenario.

A scenario names a protocol by ``module:Class`` (importable from the working directory or the
Python path) or by an entry point in the ``ciarsim.policies`` group of an installed package:

    policies:
      - {name: "my_protocols:Lookahead", tau: 2.6e-8, window: 4}

The loader turns that into ``{name: plugin, protocol: "my_protocols:Lookahead", params: {...}}``
(``schema.PluginPolicy``). The class is called with the params as keyword arguments and must
offer ``flow(images, T, seed, models)``, returning an object whose ``run(caption_ids)`` returns
one ``ImageTrace`` per image; ``ciarsim.policies.api`` has the parts (the gated flow, schedules,
op constructors). The decision cache is keyed by the protocol's source file as well, so editing
it re-decodes. ``docs/writing-a-policy.md`` walks through a complete example.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from importlib.metadata import entry_points

from ciarsim.errors import ScenarioError

GROUP = "ciarsim.policies"


def is_protocol_name(name: str) -> bool:
    """Whether ``name`` reads as an external protocol: ``module:Class`` or an entry point."""
    return ":" in name or any(ep.name == name for ep in entry_points(group=GROUP))


def load_protocol(spec: str) -> type:
    """The class named by ``spec`` (``module:Class`` or an entry-point name); clear errors."""
    if ":" not in spec:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == spec]
        if not found:
            raise ScenarioError(f"policy '{spec}': no entry point of that name in the group "
                                f"'{GROUP}', and not a 'module:Class' path")
        spec = found[0].value
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScenarioError(f"policy '{spec}': cannot import module '{module_name}' ({exc}); "
                            "is it on the Python path (the working directory counts)?") from None
    cls = getattr(module, attr, None)
    if cls is None or not callable(getattr(cls, "flow", None)):
        raise ScenarioError(f"policy '{spec}': module '{module_name}' has no class '{attr}' with "
                            "a flow(images, T, seed, models) method")
    return cls


def source_digest(spec: str) -> str:
    """SHA-256 of the protocol's source file (part of the decision cache key)."""
    cls = load_protocol(spec)
    try:
        return hashlib.sha256(inspect.getsource(inspect.getmodule(cls)).encode()).hexdigest()
    except (OSError, TypeError):
        return "unknown-source"


def make(policy):
    """An instance of the protocol named by a ``PluginPolicy`` config."""
    cls = load_protocol(policy.protocol)
    try:
        return cls(**policy.params)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"policy '{policy.display}': the protocol rejected its parameters "
                            f"{policy.params}: {exc}") from None


def flow(policy, images, T, seed, models):
    """The named protocol's flow for ``images`` (an instance per call: protocols stay stateless)."""
    return make(policy).flow(images, T, seed, models)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    from ciarsim.policies.engine import decode_with  # noqa: PLC0415

    proto = make(policy)
    return decode_with(lambda _p, images, T, s, m: proto.flow(images, T, s, m), policy, workload,
                       models_cfg, seed, models, quality)  # fmt: skip
