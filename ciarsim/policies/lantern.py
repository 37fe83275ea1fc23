"""``lantern`` (Jang et al., ICLR 2025): speculative decoding with relaxed acceptance. For draft x
take its k nearest neighbours n_1..n_k in the VQ codebook (L2 between code vectors, x excluded);
S_j = sum_{i<=j} p(n_i); j* = the largest j with S_j <= delta; accept iff
u <= (p(x) + S_j*) / q(x). On rejection q is zeroed over {n_1..n_j*} and the token is resampled
from norm(max(p - q, 0)). Every token is still verified; lossy by design."""

from functools import lru_cache

import numpy as np

from ciarsim.policies import sampling as S
from ciarsim.policies.engine import decode_with
from ciarsim.policies.flows import SpecFlow, sampling_of


def neighbours(code_vectors: np.ndarray, k: int) -> np.ndarray:
    """(V, d) codes -> (V, k) indices of each code's k nearest other codes, nearest first."""
    sq = (code_vectors**2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * code_vectors @ code_vectors.T
    np.fill_diagonal(d2, np.inf)
    k = min(k, len(code_vectors) - 1)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


@lru_cache(maxsize=4)
def _neighbours_of(models_id: int, code_bytes: bytes, shape: tuple, k: int) -> np.ndarray:
    codes = np.frombuffer(code_bytes, dtype=np.float32).reshape(shape)
    return neighbours(codes.astype(np.float64), k)


def relaxed_acceptor(nbrs: np.ndarray, delta: float):
    def acceptor(p, q, x, ut):
        rows = np.arange(len(x))
        nb = nbrs[x]  # (N, k)
        cum = np.cumsum(p[rows[:, None], nb], axis=1)
        jstar = (cum <= delta).sum(axis=1)  # how many neighbours fit in delta
        s_j = np.where(jstar > 0, cum[rows, np.maximum(jstar - 1, 0)], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(q[rows, x] > 0, (p[rows, x] + s_j) / q[rows, x], 1.0)
        ok = ut[:, S.U_ACCEPT] <= np.minimum(1.0, ratio)
        q2 = q.copy()
        inside = np.arange(nb.shape[1])[None, :] < jstar[:, None]
        q2[np.repeat(rows, nb.shape[1])[inside.ravel()], nb[inside]] = 0.0
        return ok, S.draw(S.residual(p, q2), ut[:, S.U_RESAMPLE])

    return acceptor


def acceptor_for(models, k: int, delta: float):
    """``relaxed_acceptor`` over the k nearest neighbours in ``models``' VQ codebook."""
    codes = models.tokenizer.code_vectors.detach().float().numpy()
    return relaxed_acceptor(_neighbours_of(id(models), codes.tobytes(), codes.shape, k), delta)


def flow(policy, images, T, seed, models) -> SpecFlow:
    return SpecFlow(images=images, T=T, seed=seed, models=models, sampling=sampling_of(policy),
                    gamma=policy.gamma, acceptor=acceptor_for(models, policy.k, policy.delta))


def decode(policy, workload, models_cfg, seed, models=None, quality=True):
    return decode_with(flow, policy, workload, models_cfg, seed, models, quality)
