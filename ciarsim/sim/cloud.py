"""The cloud: ONE GPU server shared by all devices, with iteration-level (continuous) batching.

Each request asks for ``steps`` sequential passes of ``new_tokens`` tokens from ``context`` image
tokens, optionally preceded by a prefill pass over the ``text_tokens`` text prefix (trace
``prompt_up``). The server loops over iterations: before each one it admits waiting requests
(FIFO) into the running set while it holds fewer than ``max_batch``; it then runs ONE step for the
whole running set, priced at (batch = running requests, context = max over them of their current
context + ``text_tokens``, new_tokens = max over them; a prefill pass counts as ``text_tokens``
new tokens on context 0); every running request advances one pass, and those that have done all
of theirs leave with a record. Requests arriving during an iteration join at the next one.
Each iteration's time is split equally among the requests running in it (``gpu_ms``: a request's
fair share of the GPU; over all requests they sum to ``busy_ms``). Units: ms.

References: Orca (Yu et al., OSDI 2022) for iteration-level scheduling; vLLM's admission loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from ciarsim.sim.costs import CostModel


@dataclass(slots=True)
class CloudRequest:
    """One request and, once served, its timing (ms)."""

    steps: int  # passes to run, the prefill pass included
    new_tokens: int
    context: int  # tokens (text prefix included) in the KV cache before the first decode step
    prefill: int  # text tokens prefilled in the first pass (0: none)
    on_done: Callable[["CloudRequest"], None]  # called at the end of the request's last pass
    arrival_ms: float
    start_ms: float = -1.0  # admitted into the running batch
    end_ms: float = -1.0
    done: int = 0  # passes completed
    gpu_ms: float = 0.0  # its share of the iterations it ran in (each split equally in a batch)

    def current(self) -> tuple[int, int]:
        """(new_tokens, context) of the pass this request runs next."""
        if self.prefill:
            if self.done == 0:
                return self.prefill, 0
            return self.new_tokens, self.context + (self.done - 1) * self.new_tokens
        return self.new_tokens, self.context + self.done * self.new_tokens

    @property
    def queue_ms(self) -> float:
        return self.start_ms - self.arrival_ms

    @property
    def compute_ms(self) -> float:
        return self.end_ms - self.start_ms


class CloudServer:
    """The batching GPU server, driven by event callbacks (no SimPy process of its own): one
    timeout per iteration, plus one zero-delay event to start a batch after an idle spell so
    that requests arriving at the same instant share it."""

    def __init__(self, env, cost: CostModel, max_batch: int, text_tokens: int, rows: int = 1):
        self.env, self.cost = env, cost
        self.max_batch, self.text_tokens = max_batch, text_tokens
        self.rows = rows  # sequences per request per step (2 with classifier-free guidance)
        self.pending: deque[CloudRequest] = deque()
        self.running: list[CloudRequest] = []
        self.iterations = 0
        self.busy_ms = 0.0  # GPU time spent in iterations (the sum of every request's gpu_ms)
        self._busy = False
        self._step_ms = 0.0

    def submit(self, steps: int, new_tokens: int, context: int, prefill: bool = False):
        """Queue a request of ``steps`` passes of ``new_tokens`` tokens from ``context`` image
        tokens, after a text-prefix prefill pass if ``prefill`` (and ``text_tokens`` > 0).
        Returns an event that fires with the served ``CloudRequest``."""
        event = self.env.event()
        self.request(steps, new_tokens, context, prefill, event.succeed)
        return event

    def request(
        self, steps: int, new_tokens: int, context: int, prefill: bool, on_done: Callable
    ) -> CloudRequest:
        """As ``submit``, but calls ``on_done(request)`` at completion instead of firing an
        event (the world's fast path)."""
        pre = self.text_tokens if prefill else 0
        steps = steps + (1 if pre else 0)
        now = self.env.now
        req = CloudRequest(steps, new_tokens, context + self.text_tokens, pre, on_done, now)
        if steps <= 0:  # nothing to compute: answer at once
            req.start_ms = req.end_ms = now
            on_done(req)
            return req
        self.pending.append(req)
        if not self._busy:
            self._busy = True
            self.env.timeout(0).callbacks.append(self._iterate)
        return req

    def serve_alone(self, steps: int, new_tokens: int, context: int, prefill: bool,
                    now: float) -> CloudRequest:  # fmt: skip
        """A request arriving at ``now`` on an idle server that nothing else reaches before it is
        done (the world's direct replay): served at once, one pass per iteration, with the same
        arithmetic, counters and record as ``request``."""
        pre = self.text_tokens if prefill else 0
        req = CloudRequest(steps + (1 if pre else 0), new_tokens, context + self.text_tokens, pre,
                           _no_callback, now, now, now)  # fmt: skip
        t = now
        while req.done < req.steps:
            new, ctx = req.current()
            step = self.cost.step_ms(new, ctx, self.rows)
            t += step
            self.iterations += 1
            self.busy_ms += step
            req.done += 1
            req.gpu_ms += step  # its share of an iteration it runs alone
        req.end_ms = t
        return req

    def _admit(self) -> None:
        now = self.env.now
        while self.pending and len(self.running) < self.max_batch:
            req = self.pending.popleft()
            req.start_ms = now
            self.running.append(req)

    def _iteration_ms(self) -> float:
        """Price of one step of the current running set (ms)."""
        run = self.running
        if len(run) == 1:
            new, ctx = run[0].current()
        else:
            cur = [r.current() for r in run]
            new, ctx = max(c[0] for c in cur), max(c[1] for c in cur)
        return self.cost.step_ms(new, ctx, len(run) * self.rows)

    def _iterate(self, _event=None) -> None:
        """Start the next iteration, or go idle when nothing is waiting."""
        self._admit()
        if not self.running:
            self._busy = False
            return
        self._step_ms = self._iteration_ms()
        self.env.timeout(self._step_ms).callbacks.append(self._finish)

    def _finish(self, _event) -> None:
        self.iterations += 1
        self.busy_ms += self._step_ms
        share = self._step_ms / len(self.running)
        now = self.env.now
        still = []
        for r in self.running:
            r.done += 1
            r.gpu_ms += share
            if r.done == r.steps:
                r.end_ms = now
                r.on_done(r)
            else:
                still.append(r)
        self.running = still
        self._iterate()


def _no_callback(_req: CloudRequest) -> None:
    """``on_done`` of a request served by ``serve_alone`` (its caller takes the record)."""
