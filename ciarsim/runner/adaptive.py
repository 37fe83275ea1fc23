"""``adaptive``: per sweep point, the candidate protocol predicted fastest at a quality floor.

The prediction never looks at the prompts it is reported on. Each candidate is decoded on
``validation_images`` VALIDATION prompts (``ciarsim.nn.splits``); its predicted latency at a point
is the mean latency of those traces replayed in the point's nominal world (the same link
capacities, RTT, hardware and cloud, with jitter and loss off: what a device can know before it
starts), and its quality is their mean caption consistency. Among the candidates whose quality is
within ``max_quality_drop`` of the reference (the ``base`` candidate if there is one, else the best
candidate), the one with the lowest predicted latency is chosen; its TEST traces are then replayed
under the point's real network like any policy. The choice and every prediction go into the
part's metadata and the run's ``adaptive.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ciarsim.trace import TraceSet


@dataclass(frozen=True)
class Variant:
    """One candidate of an adaptive policy: its config and the trace keys of its two decodes."""

    policy: object  # a PolicyConfig
    test_key: str
    validation_key: str


def validation_workload(policy, workload):
    """The workload an adaptive policy's candidates are predicted on: validation prompts."""
    return workload.model_copy(update={"images": policy.validation_images, "prompt_start": 0})


def nominal(network):
    """The network a device can know in advance: jitter and loss off, the rest unchanged."""
    return network.model_copy(update={"jitter_ms": 0.0, "loss_rate": 0.0})


def choose(policy, variants: list[Variant], load, scenario, seed: int) -> tuple[int, dict]:
    """Index of the chosen variant and a record of the prediction. ``load(key)`` gives a
    candidate's TraceSet; ``scenario`` is the point's resolved scenario."""
    from ciarsim.sim.world import simulate  # noqa: PLC0415

    predicted, quality = {}, {}
    for v in variants:
        traces: TraceSet = load(v.validation_key)
        rec = simulate(traces, workload=validation_workload(policy, scenario.workload),
                       models=scenario.models, network=nominal(scenario.network), seed=seed,
                       replication=0, policy=v.policy.display, record_segments=False)  # fmt: skip
        predicted[v.policy.display] = round(float(rec.images["latency_ms"].mean()), 3)
        q = traces.meta.get("quality", {}).get("caption_consistency")
        quality[v.policy.display] = None if not q else round(float(np.mean(q)), 4)
    labels = [v.policy.display for v in variants]
    known = [quality[x] for x in labels if quality[x] is not None]
    base = next((v.policy.display for v in variants if v.policy.name == "base"), None)
    ref = quality.get(base) if base is not None and quality.get(base) is not None else max(known, default=None)
    allowed = [x for x in labels
               if ref is None or quality[x] is None or quality[x] >= ref - policy.max_quality_drop]
    pick = min(allowed or labels, key=lambda x: (predicted[x], labels.index(x)))
    info = {"choice": pick, "predicted_latency_ms": predicted, "validation_consistency": quality,
            "reference_consistency": ref, "max_quality_drop": policy.max_quality_drop}
    return labels.index(pick), info
