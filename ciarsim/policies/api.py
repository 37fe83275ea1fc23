"""What an external protocol (``ciarsim.policies.plugin``) builds on, in one import.

- ``GateFlow``: the gated decode (cloud prefix, device drafts, a gate sends tokens to the cloud,
  the cloud keeps or replaces them); its ``schedule`` arranges the exchanges as trace ops.
- ``GateRun`` and the shipped schedules (``stop_and_wait``, ``pipelined``, ``batched``,
  ``relaxed``, ``opening``): a schedule is ``GateRun -> list of op rows``.
- ``signals``: the gates (``interval_gate`` is CIAR's U); ``Sampling``: the sampling settings.
- ``cloud_op``, ``device_op``, ``join_op``, ``DEP_NONE``, ``DEP_PREV``: trace op rows (format v2,
  ``ciarsim.trace``).
"""

from ciarsim.policies import signals
from ciarsim.policies.flows import GateFlow, Sampling
from ciarsim.policies.schedule import GateRun, batched, opening, pipelined, relaxed, stop_and_wait
from ciarsim.trace import DEP_NONE, DEP_PREV, ImageTrace, cloud_op, device_op, join_op

__all__ = [
    "DEP_NONE", "DEP_PREV", "GateFlow", "GateRun", "ImageTrace", "Sampling", "batched",
    "cloud_op", "device_op", "join_op", "opening", "pipelined", "relaxed", "signals",
    "stop_and_wait",
]  # fmt: skip
