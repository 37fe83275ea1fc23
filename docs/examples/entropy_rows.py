"""An example protocol written outside ciarsim: entropy-gated drafting, one message per row.

The device drafts a row of the token grid; every token whose draft distribution has entropy >=
``tau`` goes to the cloud, all of them in one message at the row's end; the cloud decides them in
order and stops at the first it replaces (so tokens equal stop-and-wait gating with the same
signal). Run it by naming it in a scenario (with this folder on the Python path):

    policies:
      - {name: "entropy_rows:EntropyRows", tau: 2.0, label: entropy-rows}
"""

from __future__ import annotations

import math
from functools import partial

from ciarsim.policies.api import GateFlow, Sampling, batched, signals


class EntropyRows:
    """Keyword arguments come from the scenario entry (all but ``name`` and ``label``)."""

    def __init__(self, tau: float = 2.0, rho: float = 0.06, cfg_scale: float = 3.0,
                 temperature: float = 1.0, top_k: int = 0, greedy: bool = False):
        if tau < 0:
            raise ValueError("tau must be >= 0")
        self.tau, self.rho = tau, rho
        self.sampling = Sampling(temperature, top_k, greedy, cfg_scale)

    def flow(self, images, T, seed, models) -> GateFlow:
        """The gated decode of ``images`` (T tokens each) with this protocol's schedule."""
        grid = models.cloud.cfg.grid  # tokens per row
        return GateFlow(
            images=images, T=T, seed=seed, models=models, sampling=self.sampling,
            prefix=math.floor(self.rho * T), gate=signals.entropy_gate, tau=self.tau,
            schedule=partial(batched, rows_of=grid),
        )
