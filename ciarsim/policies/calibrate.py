"""Thresholds that give each gating signal the same cloud-call budget.

Signals live on different scales (nats, probabilities, CIAR's U), so comparing them at one tau is
meaningless. This module decodes prompts with each signal's gate closed (tau = inf: the device's
own trajectory, every score recorded in the trace) and returns, per signal, the score quantiles
at which a target share of device tokens would be sent. Under gating the trajectory changes a
little, so the realised share differs slightly from the target; the run reports the realised one.

Thresholds are a choice, so they are calibrated on the ``validation`` prompt split
(``ciarsim.nn.splits``); ``split="test"`` is refused: the prompts a run reports on never set its
thresholds.
"""

from __future__ import annotations

import math

import numpy as np

from ciarsim.nn.splits import selection_split
from ciarsim.policies import gated
from ciarsim.scenario.schema import GatedPolicy, ModelsConfig, WorkloadConfig


def signal_thresholds(signals: list[str], send_rates: list[float], workload: WorkloadConfig,
                      models_cfg: ModelsConfig, seed: int, *, rho: float = 0.06, models=None,
                      split: str = "validation", **policy_kw) -> dict[str, list[float]]:  # fmt: skip
    """signal -> tau per send rate (share of device tokens sent to the cloud, in (0, 1)), on
    ``workload.images`` prompts of ``split`` from ``workload.prompt_start`` (never ``test``)."""
    split = selection_split(split).name
    out: dict[str, list[float]] = {}
    for signal in signals:
        policy = GatedPolicy(name="gated", signal=signal, tau=math.inf, rho=rho, **policy_kw)
        ts = gated.decode(policy, workload, models_cfg, seed, models=models, quality=False, split=split)
        m = math.floor(rho * ts.tokens_per_image)
        scores = ts.u[:, m:].astype(np.float64).ravel()
        scores = scores[np.isfinite(scores)]
        out[signal] = [float(np.quantile(scores, 1.0 - r, method="higher")) for r in send_rates]
    return out


def threshold_zip(signals: list[str], send_rates: list[float], images: int, checkpoints: str, seed: int,
                  rho: float = 0.06) -> dict[str, list[float]]:
    """``ciarsim thresholds``: a scenario ``zip:`` group, ``policies.gated-<signal>.tau`` -> tau per
    send rate (rounded to 6 digits) on ``images`` validation prompts; ``policies.ciar.tau`` follows
    the interval signal's."""
    taus = signal_thresholds(signals, send_rates, WorkloadConfig(images=images),
                             ModelsConfig(checkpoints=str(checkpoints)), seed, rho=rho)  # fmt: skip
    group = {f"policies.gated-{name}.tau": [round(t, 6) for t in taus[name]] for name in signals}
    if "interval" in taus:
        group["policies.ciar.tau"] = group["policies.gated-interval.tau"]
    return group
