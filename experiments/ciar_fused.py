"""``ciar_fused``: CIAR whose cloud finishes a row itself after its first replacement, so the
device never redrafts and never waits for an answer inside a row. A plugin protocol
(``docs/writing-a-policy.md``): name it ``{name: "ciar_fused:CiarFused", tau: ...}`` with this
folder on the Python path. A prototype: it reaches into ``ciarsim.policies`` internals.

The device drafts a window (``window``: 0 = the rest of the grid row, else B tokens) and gates each
draft by U as ``ciar`` does. The cloud verifies the uncertain ones in order. At the first position
it replaces, the device's later drafts were made on a token that no longer exists; instead of
discarding them and asking the device to redraft (``ciar_batched`` exact: one more round trip per
replacement), the cloud redrafts the rest of the window with its own copy of the one-layer device
model (same weights, same per-position random draws, so the same drafts, U and features the
device would have made), verifies the uncertain ones as ``ciar`` would, and sends the finished
window down; the device re-ingests it in one pass. So the tokens equal ``ciar``'s for the same seed.

- ``stream: false``: the window's drafts go up in one message at its end, then the device waits.
- ``stream: true``: each uncertain draft leaves as soon as it is drafted, with the features of the
  run kept since the last one, and the device drafts on without waiting to the window's end; there
  it waits for the answer of the first replaced position (sent mid-window, so its round trip
  overlaps the rest of the drafting) or, with nothing replaced, of the last verification. Messages
  after the first replacement belong to the discarded branch: sent, ignored (wasted).
- ``lag`` > 0: the device drafts that many positions past the window while the answer is in flight
  and keeps each iff the speculative test against its corrected distribution passes
  (``ciar_batched``'s ``lag_check``): every token is distributed as with ``lag`` 0.

The cost this shifts: the final tokens after a window's first replacement are drafted by the
cloud's copy of the small model, not by the phone (``device_drafted_share``). The trace format has
no field for the small model's steps in the cloud; ``draft_cost`` brackets them: ``free`` (not
charged: a lower bound; cloud passes of the large model are this variant's) or ``pass`` (each
priced as a pass of the cloud model, 5-10x a one-layer step: an upper bound).

After DSD's fused server-side mode at high RTT (arXiv 2511.21669), PEARL's pre-verify (Liu et al.,
ICLR 2025, arXiv 2408.11850) and pre-drafting at the edge (Venkatesha et al., arXiv 2505.21594).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ciarsim.policies import ciar
from ciarsim.policies import sampling as S
from ciarsim.policies.ciar_batched import RelaxedFlow, _BlindDrafts, exact_check
from ciarsim.policies.engine import Lockstep
from ciarsim.policies.schedule import DEP_NONE, _draft, _Sync, checked_spans, opening, windows
from ciarsim.scenario.schema import CiarPolicy
from ciarsim.trace import (
    SOURCE_CLOUD, SOURCE_CLOUD_RESAMPLED, SOURCE_DEVICE_KEPT, ImageTrace, cloud_op, device_op, join_op,
)  # fmt: skip


class CiarFused:
    def __init__(self, tau: float, rho: float = 0.06, window: int = 0, lag: int = 0,
                 draft_cost: str = "free", stream: bool = False):
        if draft_cost not in ("free", "pass"):
            raise ValueError("draft_cost must be 'free' or 'pass'")
        self.policy = CiarPolicy(name="ciar", tau=tau, rho=rho)  # ciar's sampling and acceptance
        self.window, self.lag, self.draft_cost, self.stream = window, lag, draft_cost, stream

    def flow(self, images, T, seed, models):
        rows_of = models.cloud.cfg.grid if self.window == 0 else 0
        schedule = partial(fused_stream if self.stream else fused, window=self.window,
                           rows_of=rows_of, lag=self.lag, draft_as_pass=self.draft_cost == "pass")
        return ciar.flow(self.policy, images, T, seed, models, cls=FusedFlow, schedule=schedule,
                         window=self.window, rows_of=rows_of, lag=self.lag,
                         check=exact_check if self.lag else None)


class FusedFlow(RelaxedFlow):
    """CIAR's decode (the device always fed the final tokens), plus, with ``lag``, blind drafts
    from a device that fed itself its own drafts until the row's answer came."""

    def run(self, cap_ids):
        N, T, m = len(self.images), self.T, self.prefix
        ls = Lockstep(self.models, cap_ids, self.s.cfg_scale, use_device=True, use_cloud=True,
                      inject=self.inject)  # fmt: skip
        tokens = np.zeros((N, T), np.int32)
        source = np.zeros((N, T), np.uint8)
        u_score = np.full((N, T), np.nan, np.float32)
        send = np.zeros((N, T), bool)
        ends = {e: s for s, e in self.bounds if e < T}
        blind = _OwnDrafts(self, cap_ids, tokens) if self.check else None
        view, inject_mask = ls.first(), None
        for t in range(T):
            if t > 0:
                view = ls.next(tokens[:, t - 1], inject_mask)
                if blind is not None:
                    s = ends.get(t)
                    fix = None if s is None else (source[:, s:t] == SOURCE_CLOUD_RESAMPLED).any(axis=1)
                    blind.advance(t, fix, s or 0)
            ut = self.u[:, t]
            p = self.s.probs(view.cloud_logits)
            if t < m:
                tokens[:, t] = S.draw(p, ut[:, S.U_CLOUD])
                if blind is not None:
                    blind.stream[:, t] = tokens[:, t]
                source[:, t] = SOURCE_CLOUD
                continue
            x = blind.drafts(t, view, ut) if blind is not None else None
            send[:, t], _ = self._device_position(t, view, p, ut, tokens, source, u_score, x)
            if blind is not None:
                blind.record(t, tokens[:, t])
            inject_mask = source[:, t] == SOURCE_DEVICE_KEPT
        return self.traces(tokens, source, u_score, send, blind.miss if blind is not None else None)


class _OwnDrafts(_BlindDrafts):
    """The device as it really is while a row's answer is in flight: fed its own drafts (after a
    replacement they are stale), re-synced to the final tokens at the end of each blind stretch
    (or at the row's end when there is none)."""

    def advance(self, t: int, fix, s: int) -> None:
        if fix is not None and fix.any() and not self.f.ahead.get(t, 0):
            self.until[t] = s  # no blind stretch: re-sync at once
        super().advance(t, fix, s)

    def drafts(self, t, view, ut):
        x = super().drafts(t, view, ut)
        self.own = S.draw(self.f.s.probs(self.view.device_logits), ut[:, S.U_DRAFT])
        return x

    def record(self, t: int, final: np.ndarray) -> None:
        self.stream[:, t] = self.own
        self.xb = None


def fused(run, window: int = 0, rows_of: int = 0, lag: int = 0, draft_as_pass: bool = False) -> list:
    """Per row: the device's drafts in one message; the cloud verifies through its first
    replacement, then redrafts and verifies the rest of the row itself; the device re-ingests
    the row from the first replacement (and checks its blind drafts in the same pass)."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    t = m
    for e, ahead, unc, hit, last in _flagged_windows(run, window, rows_of, lag):
        if len(hit):  # the device's drafts after the first replacement are redone in the cloud
            j1 = int(hit[0])
            ops += filter(None, [_draft(t, j1, m), _draft(j1 + 1, last, m, wasted=True)])
        else:
            j1 = e - 1
            ops += filter(None, [_draft(t, last, m)])
        tail = e - 1 - j1  # positions the cloud redrafts
        mine = int((unc <= j1).sum())  # the device's own uncertain positions the cloud decides
        passes = int((unc > j1).sum()) + (tail if draft_as_pass else 0)
        ops.append(sync.request(e - 1, e - sync.known - mine, changed=len(hit) > 0,
                                decided=mine + tail, repasses=passes))  # fmt: skip
        t = _settle(ops, run, e, ahead, j1 if len(hit) else None, last, len(ops) - 1)
    ops += filter(None, [_draft(t, T - 1, m)])
    return ops


def fused_stream(run, window: int = 0, rows_of: int = 0, lag: int = 0, draft_as_pass: bool = False) -> list:
    """``stream: true``: each uncertain draft leaves as soon as it is drafted (with the features of
    the run kept since the last one) and the device drafts on without waiting, to the row's end;
    the cloud verifies in order and, at its first replacement, finishes the row itself and
    answers with it. The device's messages after that position belong to the discarded branch
    (sent, ignored: wasted). At the row's end the device waits for that answer (or, with nothing
    replaced, for the last verification)."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    t = m
    for e, ahead, unc, hit, last in _flagged_windows(run, window, rows_of, lag):
        j1 = int(hit[0]) if len(hit) else T
        stale_from = j1 + 1
        for u in (int(x) for x in unc):
            ops += filter(None, [_draft(t, u, m, dep=DEP_NONE, wasted=u > j1)])  # not waiting for answers
            t = u + 1
            if u > j1:  # a message of the discarded branch: it goes up, the cloud ignores it
                ops.append(cloud_op(steps=0, new_tokens=0, context=0, tokens_up=u + 1 - stale_from,
                                    features_up=(u - stale_from) if run.inject else 0,
                                    tokens_down=0, decided=0, wasted=True))  # fmt: skip
                stale_from = u + 1
                continue
            if u == j1:
                tail = e - 1 - j1
                passes = int((unc > j1).sum()) + (tail if draft_as_pass else 0)
                ops.append(sync.request(u, u - sync.known, changed=True, decided=1 + tail,
                                        repasses=passes, settled=e - 1))  # fmt: skip
            else:
                ops.append(sync.request(u, u - sync.known, changed=False))
            if u <= j1:
                answer = len(ops) - 1
        ops += filter(None, [_draft(t, last, m, dep=DEP_NONE, wasted=j1 < T)])
        t = _settle(ops, run, e, ahead, j1 if len(hit) else None, last, answer)
    ops += filter(None, [_draft(t, T - 1, m)])
    return ops


def _flagged_windows(run, window: int, rows_of: int, lag: int):
    """Per window holding a flagged position: (end, blind positions past it, flagged positions,
    the replaced ones among them, the last position its drafting reaches)."""
    m, T = run.prefix, run.T
    spans = (checked_spans(m, T, window, rows_of, lag) if run.lag_miss is not None else
             [(s, e, 0) for s, e in windows(m, T, window, rows_of, 0)])
    for s, e, ahead in spans:
        unc = np.flatnonzero(run.send[s:e]) + s
        if len(unc):
            # draft through position e: that step also yields the features of token e - 1
            last = e if e < T or (run.inject and not run.send[e - 1]) else e - 1
            yield e, ahead, unc, unc[run.changed[unc]], last


def _settle(ops: list, run, e: int, ahead: int, j1: int | None, last: int, answer: int) -> int:
    """After a window [.., e): the blind drafts past it (kept up to the first the check rejects,
    the rest wasted), then, once op ``answer`` is back, the re-ingest of the window from its
    first replacement ``j1`` (or a plain wait when nothing was replaced). Returns the next
    position to draft. (As ``schedule.relaxed`` does after its windows.)"""
    m, T = run.prefix, run.T
    miss = np.flatnonzero(run.lag_miss[e:e + ahead]) + e if run.lag_miss is not None and j1 is not None else []
    r = int(miss[0]) if len(miss) else e + ahead
    ops += filter(None, [_draft(e + 1, r - 1, m, dep=DEP_NONE),
                         _draft(max(r, e + 1), e + ahead - 1, m, dep=DEP_NONE, wasted=True)])
    if j1 is not None and e < T:
        ops.append(device_op(1, j1, new_tokens=e + ahead - j1, dep=answer))
        return r + 1
    ops.append(join_op(answer))
    return max(last + 1, e + ahead)


def device_drafted_share(trace: ImageTrace, prefix: int, window: int = 0, rows_of: int = 16) -> float:
    """Share of an image's final tokens the phone drafted and the cloud did not replace: not the
    cloud's prefix, not a replaced token, not a position after a window's first replacement (those
    the cloud's copy of the small model drafted)."""
    T = len(trace.tokens)
    changed = trace.source == SOURCE_CLOUD_RESAMPLED
    cloud = prefix
    for s, e in windows(prefix, T, window, rows_of if window == 0 else 0, 0):
        hit = np.flatnonzero(changed[s:e])
        cloud += e - (s + int(hit[0])) if len(hit) else 0  # the replaced token and all after it
    return 1.0 - cloud / T
