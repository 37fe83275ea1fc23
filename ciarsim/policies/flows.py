"""The two decoding flows every policy is an instance of.

``GateFlow`` (base, device_only, code_split, gated, ciar, oracle): the cloud generates a prefix of
``prefix`` tokens and sends it down; the device generates the rest token by token; a gate decides
per token whether it goes to the cloud, which keeps it or replaces it by ``acceptance``:
  - ``speculative`` (default): keep draft x iff u <= min(1, p(x)/q(x)), else resample from
    norm(max(0, p - q)); with every token gated (tau = 0) and no feature injection this reproduces
    the cloud's distribution exactly (Leviathan et al. 2023);
  - ``cloud_argmax``: the cloud answers with its greedy token;
  - ``always_resample``: the cloud samples its own token from p, ignoring the draft.
The cloud does not re-check the tokens the device kept locally (the paper is silent; this is the
cheap reading). A cloud call uploads the device tokens the cloud has not seen (the locally kept run
plus the uncertain token) and, with injection, the interval features of the kept run; the cloud
catches up on that run in one pass and returns one token.

``SpecFlow`` (sd, lantern): rounds of ``gamma`` drafts verified in one cloud pass; the first
rejected draft is resampled from the residual; if all pass the cloud adds a bonus token from p.

Both flows decide token by token in lockstep (``engine.Lockstep``) and record, per image, the
operations of the real protocol (``ciarsim.trace``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ciarsim.policies import sampling as S
from ciarsim.policies import signals
from ciarsim.policies.engine import Lockstep, StepView
from ciarsim.policies.schedule import GateRun, Schedule, stop_and_wait
from ciarsim.trace import (
    OP_DTYPE,
    SOURCE_CLOUD,
    SOURCE_CLOUD_RESAMPLED,
    SOURCE_DEVICE_KEPT,
    SOURCE_DEVICE_VERIFIED,
    ImageTrace,
    cloud_op,
    device_op,
)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_k: int = 0
    greedy: bool = False
    cfg_scale: float = 1.0

    def probs(self, logits: torch.Tensor) -> np.ndarray:
        return S.to_probs(logits, self.temperature, self.top_k, self.greedy)


def sampling_of(policy) -> Sampling:
    """The sampling settings of a policy config (``ciarsim.scenario.schema.PolicyBase``)."""
    return Sampling(policy.temperature, policy.top_k, policy.greedy, policy.cfg_scale)


# A gate maps (position t, view, raw device distribution softmax(c), draft ids, uniforms row,
# cloud sampling distribution p, device sampling distribution q) to a score per image; the token
# goes to the cloud iff score >= tau.
Gate = Callable[..., np.ndarray]


def accept(rule: str, p: np.ndarray, q: np.ndarray, x: np.ndarray, u: np.ndarray):
    """The cloud's answer for drafts x (N,): (final ids, changed mask)."""
    rows = np.arange(len(x))
    if rule == "speculative":
        ok = S.speculative_accept(p[rows, x], q[rows, x], u[:, S.U_ACCEPT])
        alt = S.draw(S.residual(p, q), u[:, S.U_RESAMPLE])
        final = np.where(ok, x, alt)
    elif rule == "cloud_argmax":
        final = p.argmax(axis=1)
    elif rule == "always_resample":
        final = S.draw(p, u[:, S.U_CLOUD])
    else:  # pragma: no cover - the schema restricts the values
        raise ValueError(rule)
    return final, final != x


class GateFlow:
    """Cloud prefix, then device tokens with per-token gating to the cloud (see module doc)."""

    def __init__(self, *, images, T, seed, models, sampling: Sampling, prefix: int,
                 gate: Gate | None = None, tau: float = 0.0, acceptance: str = "speculative",
                 inject: bool = False, extra_tokens_up: int = 0, dists_up: int = 0,
                 schedule: Schedule = stop_and_wait, burst: int = 0) -> None:  # fmt: skip
        self.images, self.T, self.models, self.s = np.asarray(images), T, models, sampling
        self.schedule, self.burst = schedule, burst
        # the nominal device it runs: CIAR's Inter-Head only where U or its features are used
        self.device_head = "interval" if inject or gate is signals.interval_gate else "plain"
        self.prefix, self.gate, self.tau, self.rule = min(prefix, T), gate, tau, acceptance
        self.inject, self.extra_up, self.dists_up = inject, extra_tokens_up, dists_up
        self.u = S.uniforms(seed, self.images, T, S.STREAM_MAIN, S.N_MAIN)
        self.seed = seed

    def run(self, cap_ids: torch.Tensor) -> list[ImageTrace]:
        N, T, m = len(self.images), self.T, self.prefix
        use_device = m < T
        use_cloud = m > 0 or self.gate is not None
        ls = Lockstep(self.models, cap_ids, self.s.cfg_scale, use_device=use_device,
                      use_cloud=use_cloud, inject=self.inject)  # fmt: skip
        tokens = np.zeros((N, T), np.int32)
        source = np.zeros((N, T), np.uint8)
        u_score = np.full((N, T), np.nan, np.float32)
        send = np.zeros((N, T), bool)
        burst_left = np.zeros(N, np.int64)
        view, inject_mask = ls.first(), None
        for t in range(T):
            if t > 0:
                view = ls.next(tokens[:, t - 1], inject_mask)
            ut = self.u[:, t]
            p = self.s.probs(view.cloud_logits) if view.cloud_logits is not None else None
            if t < m:
                tokens[:, t] = S.draw(p, ut[:, S.U_CLOUD])
                source[:, t] = SOURCE_CLOUD
                continue
            if view.u_interval is not None:
                u_score[:, t] = view.u_interval
            send[:, t], _ = self._device_position(t, view, p, ut, tokens, source, u_score)
            if self.burst:  # positions inside a burst are the cloud's own tokens
                cloud = burst_left > 0
                tokens[:, t] = np.where(cloud, S.draw(p, ut[:, S.U_CLOUD]), tokens[:, t])
                source[:, t] = np.where(cloud, SOURCE_CLOUD, source[:, t])
                u_score[cloud, t], send[cloud, t] = np.nan, False
                burst_left = np.where(send[:, t], self.burst, np.maximum(burst_left - 1, 0))
            inject_mask = (source[:, t] == SOURCE_DEVICE_KEPT) if self.inject else None
        return self.traces(tokens, source, u_score, send)

    def traces(self, tokens, source, u_score, send, lag_miss=None) -> list[ImageTrace]:
        """Per-image traces from the decisions: the schedule arranges the exchanges.
        ``lag_miss`` (N, T): blind drafts the device's own check rejected (``ciar_batched``)."""
        changed = source == SOURCE_CLOUD_RESAMPLED
        out = []
        for k, i in enumerate(self.images):
            run = GateRun(self.T, self.prefix, send[k], changed[k], self.inject, self.extra_up,
                          self.dists_up, self.burst, None if lag_miss is None else lag_miss[k])  # fmt: skip
            ops = np.array(self.schedule(run), dtype=OP_DTYPE)
            out.append(ImageTrace(int(i), ops, tokens[k], u_score[k], source[k]))
        return out

    def _device_position(self, t, view, p, ut, tokens, source, u_score, x=None):
        """Draft position t for every image, gate and verify; returns (send mask, drafts).
        ``x``: drafts made otherwise (distributed as the view's q), used instead of a fresh draw."""
        q = self.s.probs(view.device_logits)
        x = S.draw(q, ut[:, S.U_DRAFT]) if x is None else x
        send = np.zeros(len(x), bool)
        if self.gate is not None:
            q_raw = torch.softmax(view.device_logits.double(), -1).numpy()
            score = self.gate(t, view, q_raw, x, ut, p, q)
            u_score[:, t] = score
            send = score >= self.tau
        final, changed = x, np.zeros(len(x), bool)
        if send.any():
            f, c = accept(self.rule, p, q, x, ut)
            final, changed = np.where(send, f, x), send & c
        tokens[:, t] = final
        source[:, t] = np.where(
            ~send, SOURCE_DEVICE_KEPT,
            np.where(changed, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_VERIFIED),
        )  # fmt: skip
        return send, x


class SpecFlow:
    """Speculative decoding rounds (SD; LANTERN with a relaxed ``acceptor``)."""

    def __init__(self, *, images, T, seed, models, sampling: Sampling, gamma: int,
                 acceptor=None, upload_full_q: bool = False) -> None:  # fmt: skip
        self.images, self.T, self.models, self.s = np.asarray(images), T, models, sampling
        self.gamma, self.upload_q = gamma, upload_full_q
        self.acceptor = acceptor or _exact_acceptor
        self.device_head = "plain"  # an EAGLE-style drafter: no Inter-Head
        self.u = S.uniforms(seed, self.images, T, S.STREAM_MAIN, S.N_MAIN)

    def run(self, cap_ids: torch.Tensor) -> list[ImageTrace]:
        N, T, g = len(self.images), self.T, self.gamma
        ls = Lockstep(self.models, cap_ids, self.s.cfg_scale, use_device=True, use_cloud=True,
                      inject=False)  # fmt: skip
        tokens = np.zeros((N, T), np.int32)
        source = np.zeros((N, T), np.uint8)
        start = np.zeros(N, np.int64)  # first position of each image's current round
        drafted = np.zeros(N, np.int64)  # drafts accepted so far in the round
        ops: list[list] = [[] for _ in range(N)]
        view = ls.first()
        for t in range(T):
            if t > 0:
                view = ls.next(tokens[:, t - 1])
            ut = self.u[:, t]
            p = self.s.probs(view.cloud_logits)
            q = self.s.probs(view.device_logits)
            bonus = drafted == g
            x = S.draw(q, ut[:, S.U_DRAFT])
            ok, alt = self.acceptor(p, q, x, ut)
            final = np.where(bonus, S.draw(p, ut[:, S.U_CLOUD]), np.where(ok, x, alt))
            tokens[:, t] = final
            source[:, t] = np.where(bonus, SOURCE_CLOUD, np.where(
                ok, SOURCE_DEVICE_VERIFIED, SOURCE_CLOUD_RESAMPLED))  # fmt: skip
            ends = bonus | ~ok | (t == T - 1)
            drafted = np.where(bonus, drafted, drafted + ok)
            for k in np.flatnonzero(ends):
                self._round(ops[k], int(start[k]), t, changed=not bonus[k] and not ok[k])
            start = np.where(ends, t + 1, start)
            drafted = np.where(ends, 0, drafted)
        return [
            ImageTrace(int(i), np.array(ops[k], dtype=OP_DTYPE), tokens[k],
                       np.full(T, np.nan, np.float32), source[k])
            for k, i in enumerate(self.images)
        ]  # fmt: skip

    def _round(self, ops: list, s: int, t: int, changed: bool) -> None:
        """A round that started at position s and decided its last token at t."""
        n_draft = min(self.gamma, self.T - s)
        first = s == 0
        ops.append(device_op(n_draft - 1 if first else n_draft, max(s - 1, 0),
                             prefill_text=first))  # fmt: skip
        ops.append(cloud_op(
            prompt_up=first, steps=1, new_tokens=n_draft + (0 if first else 1),
            context=max(s - 1, 0), tokens_up=n_draft,
            dists_up=n_draft if self.upload_q else 0, tokens_down=1, changed=int(changed),
            decided=t - s + 1,
        ))  # fmt: skip


def _exact_acceptor(p, q, x, ut):
    rows = np.arange(len(x))
    ok = S.speculative_accept(p[rows, x], q[rows, x], ut[:, S.U_ACCEPT])
    return ok, S.draw(S.residual(p, q), ut[:, S.U_RESAMPLE])
