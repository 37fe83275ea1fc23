"""Protocol schedules: how the decisions of a gated decode travel, as trace ops (format v2).

A gated decode (``flows.GateFlow``) decides, per image position, whether the device's draft went
to the cloud and whether the cloud replaced it (``GateRun``). Those decisions do not depend on
timing. How the exchanges are arranged does: stop-and-wait, a lookahead window, one message per
window. A schedule turns one image's ``GateRun`` into its ops; the world times them.

Common to every schedule (the opening): the cloud generates the prefix of ``prefix`` tokens while
the device prefills the caption (the two overlap: neither needs the other); the device then
ingests the prefix in one pass once it has arrived.

- ``stop_and_wait`` (ciar, gated, code_split, oracle): the device blocks on every exchange.
- ``pipelined`` (ciar_pipelined, window W): after sending an uncertain token the device keeps
  drafting, assuming its draft is kept, up to W tokens or up to the next uncertain token (at most
  one request in flight, so no request is ever built on a guess). If the cloud kept the token the
  drafts are final; if it replaced it they are thrown away (charged as wasted device work) and
  redrafted. Fixed by W, not by timing: the device checks the answer when its lookahead ends.
- ``batched`` (ciar_batched exact, window): the device drafts a whole window and sends every
  uncertain position in one message; the cloud decides them in order in one pass and stops at the
  first it replaces; the drafts after that are thrown away and redrafted from there.

Positions are image tokens; a device step at position t feeds token t-1 (context t-1) and yields
the distribution of token t, so drafting positions a..b is b - a + 1 steps from context a - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ciarsim.trace import DEP_NONE, DEP_PREV, cloud_op, device_op, join_op


@dataclass(frozen=True)
class GateRun:
    """What a gated decode decided for one image (arrays over the T image positions)."""

    T: int
    prefix: int  # cloud-generated opening tokens
    send: np.ndarray  # (T,) bool: the draft went to the cloud
    changed: np.ndarray  # (T,) bool: the cloud replaced it
    inject: bool = False  # interval features of the kept run travel with each request
    extra_up: int = 0  # extra token ids per request (top-k sets)
    dists_up: int = 0  # full distributions per request (U-HLM)
    burst: int = 0  # cloud-generated tokens that follow each answer (cloud_burst)
    lag_miss: np.ndarray | None = None  # (T,) bool: blind drafts the device's own check rejected


Schedule = Callable[[GateRun], list]


class _Sync:
    """The cloud's view of one image: what it holds and what the device has not yet sent."""

    def __init__(self, run: GateRun):
        self.run = run
        m = run.prefix
        self.cpos = max(m - 1, 0)  # image tokens in the cloud's KV cache
        self.known = m  # image tokens the cloud knows
        self.started = m > 0  # the prompt went up with the prefix request

    def request(self, upto: int, features: int, *, changed: bool, decided: int = 1,
                settled: int | None = None, dep: int = DEP_PREV, generate: int = 0,
                repasses: int = 0) -> tuple:
        """The exchange that sends the unsynced drafts through ``upto`` (with ``features``
        interval features), has the cloud decide them in one pass plus ``repasses`` passes that
        re-read the window after a replacement, and then ``generate`` tokens of its own (one pass
        each; every extra pass priced at the first pass's width, a slight over-estimate). After
        it the positions through ``settled`` (default ``upto + generate``) are final and known to
        the cloud."""
        r = self.run
        settled = upto + generate if settled is None else settled
        n_new = upto - self.cpos
        op = cloud_op(
            prompt_up=not self.started, steps=(1 if n_new > 0 else 0) + generate + repasses,
            new_tokens=max(n_new, 1) if generate else n_new,
            context=self.cpos, tokens_up=upto + 1 - self.known + r.extra_up,
            features_up=features if r.inject else 0, dists_up=r.dists_up,
            tokens_down=decided, changed=int(changed), dep=dep, decided=decided,
        )  # fmt: skip
        self.cpos, self.known, self.started = settled, settled + 1, True
        return op


def opening(run: GateRun) -> list:
    """The cloud prefix and the device's caption prefill, overlapped; the device ingests the
    prefix once it has arrived. Ends with the device ready to draft position ``prefix``."""
    m, T, ops = run.prefix, run.T, []
    if m > 0:
        ops.append(cloud_op(prompt_up=True, steps=m - 1, new_tokens=1, context=0, tokens_down=m,
                            decided=m, dep=DEP_NONE))  # fmt: skip
    if m < T:
        ops.append(device_op(0, 0, prefill_text=True, dep=DEP_NONE))
        if m > 0:
            ops.append(device_op(1, 0, new_tokens=m, dep=0))
    return ops


def _draft(a: int, b: int, m: int, **kw) -> tuple | None:
    """Device steps that draft positions a..b (the opening already yields position m)."""
    a = max(a, m + 1)
    return device_op(b - a + 1, a - 1, **kw) if b >= a else None


def stop_and_wait(run: GateRun) -> list:
    """Every uncertain token is one blocking exchange (CIAR as published). With ``run.burst``
    = k the answer also carries the cloud's next k tokens, which the device ingests in one pass."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    t = m  # next position to draft
    for u in (int(x) for x in np.flatnonzero(run.send[m:]) + m):
        ops += filter(None, [_draft(t, u, m)])
        k = min(run.burst, T - 1 - u)
        ops.append(sync.request(u, u - sync.known, changed=bool(run.changed[u]), decided=1 + k,
                                generate=k))  # fmt: skip
        if k:
            ops.append(device_op(1, u, new_tokens=k + 1))  # ingest the answer and the burst
        t = u + k + (2 if k else 1)
    ops += filter(None, [_draft(t, T - 1, m)])
    return ops


def pipelined(run: GateRun, window: int) -> list:
    """Draft ahead of the one outstanding request by at most ``window`` tokens (module doc).
    ``window`` = 0 times exactly like ``stop_and_wait``."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    sends = [int(u) for u in np.flatnonzero(run.send[m:]) + m]
    drafted = m - 1  # the last position whose final draft exists
    for i, u in enumerate(sends):
        ops += filter(None, [_draft(drafted + 1, u, m)])
        replaced = bool(run.changed[u])
        ops.append(sync.request(u, u - sync.known, changed=replaced))
        req = len(ops) - 1
        nxt = sends[i + 1] if i + 1 < len(sends) else T - 1
        ahead = min(u + window, nxt)  # the lookahead stops at the next uncertain draft
        ops += filter(None, [_draft(u + 1, ahead, m, dep=DEP_NONE, wasted=replaced)])
        ops.append(join_op(req))
        drafted = u if replaced else max(ahead, u)
    ops += filter(None, [_draft(drafted + 1, T - 1, m)])
    return ops


def batched(run: GateRun, window: int = 0, rows_of: int = 0) -> list:
    """Exact window batching (module doc). A window is ``window`` tokens from where the last one
    stopped or, with ``rows_of`` > 0, the rest of the current row of ``rows_of`` tokens."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    s = m
    while s < T:
        e = min(T, (s // rows_of + 1) * rows_of if rows_of else s + window)  # window [s, e)
        unc = np.flatnonzero(run.send[s:e]) + s
        if len(unc) == 0:
            ops += filter(None, [_draft(s, e - 1, m)])
            s = e
            continue
        hit = unc[run.changed[unc]]
        keep_to = int(hit[0]) if len(hit) else e - 1  # the window's drafts that stay final
        ops += filter(None, [_draft(s, keep_to, m)])
        ops += filter(None, [_draft(keep_to + 1, e - 1, m, wasted=True)])  # drafted, thrown away
        decided = int(np.count_nonzero(unc <= keep_to))
        # One message: the window's drafts and the features of those the device did not flag.
        # Past the first replacement the flags belong to the discarded branch (not decoded), so
        # every draft there counts: an upper bound on that part's features.
        features = (keep_to + 1 - sync.known - decided) + (e - 1 - keep_to)
        ops.append(sync.request(e - 1, features, changed=len(hit) > 0, decided=decided,
                                settled=keep_to))
        s = keep_to + 1
    return ops


def relaxed(run: GateRun, window: int = 0, rows_of: int = 0, lag: int = 0) -> list:
    """Relaxed window batching (ciar_batched, mode relaxed): windows at fixed positions; the
    device drafts a whole window on its own drafts and sends every flagged position (and the
    features of the rest) in one message; the cloud's replacements are patched in and the later
    drafts stay. The device drafts ``lag`` more positions while the answer is in flight (0: it
    waits), then, if anything changed, re-ingests from the first change in one pass (its KV cache
    held its drafts). With ``run.lag_miss`` (lag_check) that pass also checks the blind drafts:
    those from the first rejected one on are thrown away (charged) and redrafted."""
    ops, sync, m, T = opening(run), _Sync(run), run.prefix, run.T
    t = m  # next position to draft
    spans = (checked_spans(m, T, window, rows_of, lag) if run.lag_miss is not None else
             [(s, e, min(lag, T - e)) for s, e in windows(m, T, window, rows_of, lag)])
    for s, e, ahead in spans:  # positions e .. e + ahead - 1 are drafted blind
        unc = np.flatnonzero(run.send[s:e]) + s
        if len(unc) == 0:
            continue
        # draft through position e: that step also yields the features of token e - 1 (at the
        # image's end it is needed only when that token travels with features)
        last = e if e < T or (run.inject and not run.send[e - 1]) else e - 1
        ops += filter(None, [_draft(t, last, m)])
        hit = unc[run.changed[unc]]
        # the cloud decides each flagged position on the final tokens before it, so every
        # replacement followed by another flagged position costs it one more pass (from the
        # replaced position on), in the cloud, with no network in between
        ops.append(sync.request(e - 1, e - sync.known - len(unc), changed=len(hit) > 0,
                                decided=len(unc), repasses=int((hit < unc[-1]).sum())))  # fmt: skip
        req = len(ops) - 1
        miss = np.flatnonzero(run.lag_miss[e:e + ahead]) + e if run.lag_miss is not None and len(hit) else []
        r = int(miss[0]) if len(miss) else e + ahead  # the first blind draft the check rejects
        ops += filter(None, [_draft(e + 1, r - 1, m, dep=DEP_NONE),
                             _draft(max(r, e + 1), e + ahead - 1, m, dep=DEP_NONE, wasted=True)])
        if len(hit) and e < T:
            c = int(hit[0])
            # re-ingest from the first change; with lag_check the same pass yields the corrected
            # distributions the blind drafts are checked against (the first rejected one is
            # resampled from them; the drafts after it are redrafted)
            ops.append(device_op(1, c, new_tokens=e + ahead - c, dep=req))
            t = r + 1
        else:
            ops.append(join_op(req))
            t = max(last + 1, e + ahead)
    ops += filter(None, [_draft(t, T - 1, m)])
    return ops


def checked_spans(m: int, T: int, window: int, rows_of: int, lag: int) -> list[tuple[int, int, int]]:
    """``lag_check``: the windows of ``lag`` 0, each with its blind stretch (s, e, ahead): at most
    ``lag`` positions and fewer than the next window holds, so they are checked before that
    window's message leaves."""
    w = windows(m, T, window, rows_of, 0)
    return [(s, e, min(lag, w[k + 1][1] - e - 1) if k + 1 < len(w) else 0) for k, (s, e) in enumerate(w)]


def windows(m: int, T: int, window: int, rows_of: int, lag: int = 0) -> list[tuple[int, int]]:
    """Fixed windows [s, e) over positions m..T-1: ``window`` tokens each, or rows of
    ``rows_of`` tokens; a window not longer than ``lag`` joins the next one (so an answer is
    always applied before the next window's message leaves)."""
    out, s = [], m
    while s < T:
        e = min(T, (s // rows_of + 1) * rows_of if rows_of else s + window)
        while e - s <= lag and e < T:
            e = min(T, e + (rows_of or window))
        out.append((s, e))
        s = e
    return out
