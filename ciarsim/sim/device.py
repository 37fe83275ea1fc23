"""A phone or board: one compute resource that runs OP_DEVICE rows, FIFO, priced by its
``CostModel``. The device sees ``text_tokens`` of text prefix in front of the image tokens; an op
flagged ``prefill`` (trace ``prompt_up`` on a device op) first runs one pass over that prefix.
Units: ms.
"""

from __future__ import annotations

from typing import Generator

from ciarsim.sim.costs import CostModel


class Device:
    """Compute of one device. ``busy_until`` makes overlapping requests queue FIFO."""

    def __init__(self, index: int, cost: CostModel, text_tokens: int, rows: int = 1):
        self.index, self.cost, self.text_tokens, self.rows = index, cost, text_tokens, rows
        self.busy_until = 0.0
        self._ms: dict[tuple[int, int, int, int], float] = {}

    def op_ms(self, steps: int, new_tokens: int, context: int, prefill: int = 0) -> float:
        """Time of the text prefill (if ``prefill``) then ``steps`` sequential passes of
        ``new_tokens`` tokens from ``context`` image tokens (ms)."""
        key = (steps, new_tokens, context, prefill)
        ms = self._ms.get(key)
        if ms is None:
            ms = self._ms[key] = self._price(steps, new_tokens, context, prefill)
        return ms

    def _price(self, steps: int, new_tokens: int, context: int, prefill: int) -> float:
        text = self.text_tokens
        ms = self.cost.op_ms(1, text, 0, self.rows) if prefill and text else 0.0
        if steps > 0:
            ms += self.cost.op_ms(steps, new_tokens, context + text, self.rows)
        return ms

    def compute(
        self, env, steps: int, new_tokens: int, context: int, prefill: int = 0
    ) -> Generator:
        """SimPy process function: run one OP_DEVICE row; returns (start_ms, end_ms)."""
        start = max(env.now, self.busy_until)
        end = start + self.op_ms(steps, new_tokens, context, prefill)
        self.busy_until = end
        yield env.timeout(end - env.now)
        return start, end
