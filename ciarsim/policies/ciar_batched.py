"""``ciar_batched``: CIAR with one message per window of drafts instead of one per uncertain token.

The device drafts a window (``window`` tokens, or with ``window: 0`` the rest of the current row of
the token grid) and sends every uncertain position in it, with the interval features of the rest,
in one message; the cloud decides them in order in one pass over the window.

- ``mode: exact``: the cloud stops at the first position it replaces; the drafts after it were
  made on a token that no longer exists, so they are thrown away (charged as wasted device work)
  and the next window starts right after it. Same tokens as ``ciar`` for the same seed
  (``schedule.batched``).
- ``mode: relaxed``: windows sit at fixed positions; the cloud decides every uncertain position
  of the window, each on the final tokens before it (one more pass in the cloud after each
  replacement that a later uncertain position follows), and the later drafts are kept even when an earlier position changed (they were
  conditioned on the device's draft, not on the cloud's replacement). Lossy: a different decode,
  whose quality ciarsim measures; the device re-ingests the window from the first change
  (``schedule.relaxed``). ``lag``: positions the device drafts past the window, on its
  uncorrected stream, while the answer is in flight (0: it waits for the answer); a fixed
  number, so the decode does not depend on timing; set it near the round trip in device steps
  to hide the network. Block-wise verification of image tokens in the spirit of LANTERN's
  relaxed acceptance (Jang et al., ICLR 2025, arXiv 2410.03355).
"""

from functools import partial

import numpy as np
import torch

from ciarsim.policies import ciar, lantern
from ciarsim.policies import sampling as S
from ciarsim.policies.engine import Lockstep, StepView, decode_with
from ciarsim.policies.flows import GateFlow
from ciarsim.policies.schedule import batched, checked_spans, relaxed, windows
from ciarsim.trace import SOURCE_CLOUD, SOURCE_DEVICE_KEPT


def flow(policy, images, T, seed, models):
    rows_of = models.cloud.cfg.grid if policy.window == 0 else 0
    if policy.mode == "exact":
        schedule = partial(batched, window=policy.window, rows_of=rows_of)
        return ciar.flow(policy, images, T, seed, models, schedule=schedule)
    schedule = partial(relaxed, window=policy.window, rows_of=rows_of, lag=policy.lag)
    check = None
    if policy.lag_check:  # the exact speculative test, or LANTERN's relaxed one with lag_delta > 0
        check = lantern.acceptor_for(models, policy.lag_k, policy.lag_delta) if policy.lag_delta else exact_check
    return ciar.flow(policy, images, T, seed, models, cls=RelaxedFlow, schedule=schedule,
                     window=policy.window, rows_of=rows_of, lag=policy.lag, check=check)


class RelaxedFlow(GateFlow):
    """The gated flow with the device decoding on its own drafts inside each window, re-synced
    to the final tokens at the window's end (``mode: relaxed``). With ``check`` the blind drafts
    past a window come from a second device cache that is re-synced only ``lag`` positions
    later; each is kept iff it passes the speculative test against the re-synced device."""

    def __init__(self, *, window: int, rows_of: int, lag: int, check=None, **kw):
        super().__init__(**kw)
        self.lag, self.check = lag, check
        if check:  # the windows of lag 0, each with its blind stretch
            spans = checked_spans(self.prefix, self.T, window, rows_of, lag)
            self.bounds, self.ahead = [(s, e) for s, e, _ in spans], {e: a for _, e, a in spans}
        else:
            self.bounds = windows(self.prefix, self.T, window, rows_of, lag)
        self.u_check = S.uniforms(self.seed, self.images, self.T, S.STREAM_LAG_CHECK, S.N_MAIN) if check else None

    def run(self, cap_ids):
        N, T, m = len(self.images), self.T, self.prefix
        ls = Lockstep(self.models, cap_ids, self.s.cfg_scale, use_device=True, use_cloud=True,
                      inject=self.inject)  # fmt: skip
        tokens = np.zeros((N, T), np.int32)
        stream = np.zeros((N, T), np.int32)  # what the device has fed itself: drafts, patched
        source = np.zeros((N, T), np.uint8)
        u_score = np.full((N, T), np.nan, np.float32)
        send = np.zeros((N, T), bool)
        # the answer about window [s, e) is applied when the device reaches position e + lag
        # (with check: at e, to the device that decides; the blind one gets it at e + lag)
        lag = 0 if self.check else self.lag
        applied = {e + lag: (s, e) for s, e in self.bounds if e + lag < T}
        blind = _BlindDrafts(self, cap_ids, stream) if self.check else None
        view, inject_mask = ls.first(), None
        for t in range(T):
            if t > 0:
                view = ls.next(tokens[:, t - 1], inject_mask, device_tokens=stream[:, t - 1])
                fix = None
                if t in applied:  # patch the device's stream where the cloud changed it
                    s, e = applied[t]
                    fix = (tokens[:, s:e] != stream[:, s:e]).any(axis=1)
                    stream[:, s:e] = tokens[:, s:e]
                    if fix.any():
                        view = _merge(view, ls.resync(s, stream[:, s:t]), fix)
                if blind is not None:
                    blind.advance(t, fix, applied.get(t, (0, 0))[0])
            ut = self.u[:, t]
            p = self.s.probs(view.cloud_logits)
            if t < m:
                tokens[:, t] = stream[:, t] = S.draw(p, ut[:, S.U_CLOUD])
                if blind is not None:
                    blind.stream[:, t] = stream[:, t]
                source[:, t] = SOURCE_CLOUD
                continue
            x = blind.drafts(t, view, ut) if blind is not None else None
            send[:, t], stream[:, t] = self._device_position(t, view, p, ut, tokens, source, u_score, x)
            if blind is not None:
                blind.record(t, stream[:, t])
            inject_mask = source[:, t] == SOURCE_DEVICE_KEPT
        return self.traces(tokens, source, u_score, send, blind.miss if blind is not None else None)


def exact_check(q, qb, xb, u):
    """Keep blind draft xb iff u <= min(1, q(xb) / qb(xb)); else resample from norm(max(0, q - qb))."""
    rows = np.arange(len(xb))
    ok = S.speculative_accept(q[rows, xb], qb[rows, xb], u[:, S.U_ACCEPT])
    return ok, S.draw(S.residual(q, qb), u[:, S.U_RESAMPLE])


class _BlindDrafts:
    """``lag_check``: the device's drafts past a window while its answer is in flight.

    A second device cache keeps feeding itself its uncorrected stream for ``lag`` positions after
    each window. At those positions the draft comes from it (the stale context); when the answer
    arrives the device re-ingests the corrected window (one pass, which yields the corrected
    distributions) and keeps each blind draft x iff u <= min(1, q(x) / q_blind(x)), q the corrected
    distribution; the first rejected one is resampled from norm(max(0, q - q_blind)) and the device
    drafts normally from there (Leviathan et al. 2023, with the device as its own verifier). So every
    token is distributed as under ``lag: 0`` (token-identical with greedy sampling)."""

    def __init__(self, flow: "RelaxedFlow", cap_ids, stream: np.ndarray):
        self.f, self.main = flow, stream
        self.ls = Lockstep(flow.models, cap_ids, flow.s.cfg_scale, use_device=True, use_cloud=False,
                           inject=False)  # fmt: skip
        self.view = self.ls.first()
        self.stream = np.zeros_like(stream)  # what the blind device has fed itself
        N = len(flow.images)
        self.left = np.zeros(N, np.int64)  # blind positions still to come, per image
        self.miss = np.zeros((N, flow.T), bool)  # the first rejected blind draft of each window
        self.until = {}  # position -> window start: where the blind device takes the answer

    def advance(self, t: int, fix: np.ndarray | None, s: int) -> None:
        """Feed the blind device position t - 1; at a window's end open its blind stretch (for
        the images whose window changed), at the stretch's end re-sync it to the final stream."""
        self.view = self.ls.next(self.stream[:, t - 1])
        if fix is not None and fix.any() and self.f.ahead.get(t, 0):
            self.left = np.where(fix, self.f.ahead[t], 0)
            self.until[t + self.f.ahead[t]] = s
        if t in self.until:
            s = self.until.pop(t)
            stale = (self.stream[:, s:t] != self.main[:, s:t]).any(axis=1)
            self.stream[:, s:t] = self.main[:, s:t]
            if stale.any():
                self.view = _merge(self.view, self.ls.resync(s, self.stream[:, s:t]), stale)

    def drafts(self, t: int, view: StepView, ut: np.ndarray) -> np.ndarray:
        """Position t's drafts: fresh from ``view`` (the corrected device) outside blind stretches,
        the checked blind draft inside them."""
        q = self.f.s.probs(view.device_logits)
        x = S.draw(q, ut[:, S.U_DRAFT])
        on = self.left > 0
        if not on.any():
            return x
        qb = self.f.s.probs(self.view.device_logits)
        xb = S.draw(qb, ut[:, S.U_DRAFT])
        ok, alt = self.f.check(q, qb, xb, self.f.u_check[:, t])
        self.miss[:, t] = on & ~ok
        self.left = np.where(on & ok, self.left - 1, 0)
        self.xb = np.where(on, xb, -1)
        return np.where(on, np.where(ok, xb, alt), x)

    def record(self, t: int, draft: np.ndarray) -> None:
        """What the blind device feeds itself at t: its own draft inside a stretch, else the
        decided device's draft."""
        xb = getattr(self, "xb", None)
        self.stream[:, t] = np.where(xb >= 0, xb, draft) if xb is not None else draft
        self.xb = None


def _merge(view: StepView, fixed: StepView, rows: np.ndarray) -> StepView:
    """``view`` with the device fields of ``rows`` taken from ``fixed``."""
    mask = torch.from_numpy(rows)[:, None]
    logits = torch.where(mask, fixed.device_logits, view.device_logits)
    u = np.where(rows, fixed.u_interval, view.u_interval)
    return StepView(view.cloud_logits, logits, u, view.features)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
