"""Uncertainty signals for the ``gated`` policy: each returns a score per image; send iff >= tau.

- ``random``: a uniform draw, so a token is sent with probability 1 - tau.
- ``entropy``: entropy (nats) of the device's distribution: softmax of the guided centre c, or of
  the caption branch's centre, whichever CFG variant the model set's card chose on validation
  prompts (``interhead.cfg_variant``, ``ciarsim.nn.train.choose_variants``).
- ``max_prob``: 1 - max of that distribution ("SoftmaxCorr"), its variant chosen the same way.
- ``topk_set``: probability mass outside the device's top-k set (the discrete-solution-set
  baseline); a sent token uploads its k candidate ids.
- ``uhlm``: U-HLM (arXiv 2412.12687): K temperatures theta ~ U(0.05, 2), one sample each from
  softmax(c / theta); the score is the share of samples that differ from the draft. A sent token
  uploads the full device distribution.
- ``interval``: CIAR's U = ||p_hi - p_lo||_1 * std(p_hi - p_lo) from the Inter-Head, in its chosen
  CFG variant (the engine computes it: ``StepView.u_interval``).
- ``oracle`` (used by the oracle policy): 1 where the cloud's acceptance rule would change the
  draft, else 0 -- the best any signal could do.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ciarsim.policies import sampling as S


def random_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return ut[:, S.U_GATE]


def entropy_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return S.entropy(q_raw)


def max_prob_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return 1.0 - q_raw.max(axis=1)


def _cond_probs(view) -> np.ndarray:
    return torch.softmax(view.device_cond_logits.double(), -1).numpy()


def entropy_cond_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return S.entropy(_cond_probs(view))


def max_prob_cond_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return 1.0 - _cond_probs(view).max(axis=1)


def variant_gate(signal: str, variant: str) -> Callable:
    """The entropy / max-prob gate scoring the guided proposal or the caption branch."""
    gates = {("entropy", "guided"): entropy_gate, ("entropy", "conditional"): entropy_cond_gate,
             ("max_prob", "guided"): max_prob_gate, ("max_prob", "conditional"): max_prob_cond_gate}
    return gates[(signal, variant)]


def interval_gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
    return view.u_interval


def topk_set_gate(k: int) -> Callable:
    def gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
        kk = min(k, q_raw.shape[1])
        top = np.partition(q_raw, q_raw.shape[1] - kk, axis=1)[:, -kk:]
        return 1.0 - top.sum(axis=1)

    return gate


def uhlm_gate(seed: int, images: np.ndarray, T: int, samples: int) -> Callable:
    """U-HLM's temperature-disagreement score; its draws come from their own per-image stream."""
    draws = S.uniforms(seed, images, T, S.STREAM_UHLM, 2 * samples)  # (N, T, 2K)

    def gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
        logits = view.device_logits.double()  # (N, V)
        theta = 0.05 + 1.95 * draws[:, t, :samples]  # (N, K)
        differ = np.zeros(len(x))
        for j in range(samples):
            pj = torch.softmax(logits / torch.from_numpy(theta[:, j])[:, None], -1).numpy()
            differ += S.draw(pj, draws[:, t, samples + j]) != x
        return differ / samples

    return gate


def oracle_gate(rule: str) -> Callable:
    from ciarsim.policies.flows import accept  # noqa: PLC0415

    def gate(t, view, q_raw, x, ut, p, q) -> np.ndarray:
        return accept(rule, p, q, x, ut)[1].astype(np.float64)

    return gate
