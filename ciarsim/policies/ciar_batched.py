"""``ciar_batched``: CIAR with one message per window of drafts instead of one per uncertain token.

The device drafts a window (``window`` tokens, or with ``window: 0`` the rest of the current row of
the token grid) and sends every uncertain position in it, with the interval features of the rest,
in one message; the cloud decides them in order in one pass over the window.

- ``mode: exact``: the cloud stops at the first position it replaces; the drafts after it were
  made on a token that no longer exists, so they are thrown away (charged as wasted device work)
  and the next window starts right after it. Same tokens as ``ciar`` for the same seed
  (``schedule.batched``).
- ``mode: relaxed``: windows sit at fixed positions; the cloud decides every uncertain position
  of the window and the later drafts are kept even when an earlier position changed (they were
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

from ciarsim.policies import ciar
from ciarsim.policies import sampling as S
from ciarsim.policies.engine import Lockstep, StepView, decode_with
from ciarsim.policies.flows import GateFlow
from ciarsim.policies.schedule import batched, relaxed, windows
from ciarsim.trace import SOURCE_CLOUD, SOURCE_DEVICE_KEPT


def flow(policy, images, T, seed, models):
    rows_of = models.cloud.cfg.grid if policy.window == 0 else 0
    if policy.mode == "exact":
        schedule = partial(batched, window=policy.window, rows_of=rows_of)
        return ciar.flow(policy, images, T, seed, models, schedule=schedule)
    schedule = partial(relaxed, window=policy.window, rows_of=rows_of, lag=policy.lag)
    return ciar.flow(policy, images, T, seed, models, cls=RelaxedFlow, schedule=schedule,
                     window=policy.window, rows_of=rows_of, lag=policy.lag)


class RelaxedFlow(GateFlow):
    """The gated flow with the device decoding on its own drafts inside each window, re-synced
    to the final tokens at the window's end (``mode: relaxed``)."""

    def __init__(self, *, window: int, rows_of: int, lag: int, **kw):
        super().__init__(**kw)
        self.bounds, self.lag = windows(self.prefix, self.T, window, rows_of, lag), lag

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
        applied = {e + self.lag: (s, e) for s, e in self.bounds if e + self.lag < T}
        view, inject_mask = ls.first(), None
        for t in range(T):
            if t > 0:
                view = ls.next(tokens[:, t - 1], inject_mask, device_tokens=stream[:, t - 1])
                if t in applied:  # patch the device's stream where the cloud changed it
                    s, e = applied[t]
                    fix = (tokens[:, s:e] != stream[:, s:e]).any(axis=1)
                    stream[:, s:e] = tokens[:, s:e]
                    if fix.any():
                        view = _merge(view, ls.resync(s, stream[:, s:t]), fix)
            ut = self.u[:, t]
            p = self.s.probs(view.cloud_logits)
            if t < m:
                tokens[:, t] = stream[:, t] = S.draw(p, ut[:, S.U_CLOUD])
                source[:, t] = SOURCE_CLOUD
                continue
            send[:, t], stream[:, t] = self._device_position(t, view, p, ut, tokens, source, u_score)
            inject_mask = source[:, t] == SOURCE_DEVICE_KEPT
        return self.traces(tokens, source, u_score, send)


def _merge(view: StepView, fixed: StepView, rows: np.ndarray) -> StepView:
    """``view`` with the device fields of ``rows`` taken from ``fixed``."""
    mask = torch.from_numpy(rows)[:, None]
    logits = torch.where(mask, fixed.device_logits, view.device_logits)
    u = np.where(rows, fixed.u_interval, view.u_interval)
    return StepView(view.cloud_logits, logits, u, view.features)


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
