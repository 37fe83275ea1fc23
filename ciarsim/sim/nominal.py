"""Nominal models: the real-scale models whose cost the world simulates, described by shapes only.

LlamaGen GPTs (Sun et al., "Autoregressive Model Beats Diffusion: Llama for Scalable Image
Generation", 2024; shapes in its ``gpt.py`` presets): vocabulary 16384, SwiGLU FFN with hidden
width ``round_up(8 * dim / 3, 256)``, RMSNorm, multi-head attention with as many KV heads as query
heads. The parameter counts below reproduce the ``params_m`` column of the measured GPU tables in
``ciarsim/data/gpu_profiles`` (tested).

``ciar-device-xl`` is CIAR's device model (Ye et al., ICLR 2026) at LlamaGen-XL width: the token
embedding, ONE transformer block and the Inter-Head with 2|V| outputs (centre and radius logits),
about 83M parameters; ``ciar-device-xl-2l`` is the same with two blocks (about 104M), the nominal
model of a 2-layer decision-model set (``ciarsim train device --device-layers 2``). The feature projection phi is not costed (its form is not public; a light
projection by the paper's account).

Costing conventions (used by ``ciarsim.sim.costs``):
- weights are read once per step: every linear layer and the output head; the token-embedding
  table is gathered (one row per token), not streamed;
- KV cache: K and V for every layer, ``dtype_bytes`` each, per token;
- FLOPs: 2 per weight per token for the linear layers, plus attention 4 * layers * dim per
  (query token, key token) pair; a step of ``n`` new tokens on ``c`` cached tokens attends to
  ``c + n`` keys per query (the measured kernel uses an explicit mask, so no causal saving).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LLAMAGEN_VOCAB = 16384


@dataclass(frozen=True)
class NominalModel:
    """Shapes of one nominal model. All sizes in elements; bytes use ``dtype_bytes`` (bf16 = 2)."""

    name: str
    layers: int
    dim: int
    vocab: int = LLAMAGEN_VOCAB
    head_outputs: int = LLAMAGEN_VOCAB  # outputs of the final head (2|V| for the Inter-Head)
    dtype_bytes: int = 2
    source: str = ""

    @property
    def ffn_hidden(self) -> int:
        """SwiGLU hidden width: ``round_up(8 * dim / 3, 256)``."""
        return math.ceil(8 * self.dim / 3 / 256) * 256

    @property
    def block_params(self) -> int:
        """Parameters of one transformer block (attention 4 d^2 + SwiGLU 3 d h; norms ignored)."""
        return 4 * self.dim * self.dim + 3 * self.dim * self.ffn_hidden

    @property
    def linear_params(self) -> int:
        """Parameters streamed every step: all blocks plus the output head."""
        return self.layers * self.block_params + self.dim * self.head_outputs

    @property
    def params(self) -> int:
        """Total parameters, including the token embedding."""
        return self.linear_params + self.vocab * self.dim

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights read in one step (bytes)."""
        return self.linear_params * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes per cached token per sequence (bytes)."""
        return 2 * self.layers * self.dim * self.dtype_bytes

    @property
    def token_bits(self) -> int:
        """Bits to send one token id: ``ceil(log2 vocab)``."""
        return max(1, math.ceil(math.log2(self.vocab)))


def _llamagen(name: str, layers: int, dim: int) -> NominalModel:
    return NominalModel(name, layers, dim, source="LlamaGen gpt.py presets (Sun et al. 2024)")


NOMINAL_MODELS: dict[str, NominalModel] = {
    "llamagen-b": _llamagen("llamagen-b", 12, 768),  # 110M
    "llamagen-l": _llamagen("llamagen-l", 24, 1024),  # 342M
    "llamagen-xl": _llamagen("llamagen-xl", 36, 1280),  # 773M
    "llamagen-xxl": _llamagen("llamagen-xxl", 48, 1536),  # 1.41B
    "llamagen-3b": _llamagen("llamagen-3b", 24, 3200),  # 3.09B
    "ciar-device-xl": NominalModel(
        "ciar-device-xl", 1, 1280, head_outputs=2 * LLAMAGEN_VOCAB,
        source="CIAR (Ye et al. 2026): one XL block + token embedding + Inter-Head (2|V|)",
    ),  # 83M  # fmt: skip
    # The 2-layer device alternative (issue 17; --device-layers 2): the first TWO blocks. Costs one
    # more XL block per token (weights, FLOPs, KV cache) than the paper's one-layer design.
    "ciar-device-xl-2l": NominalModel(
        "ciar-device-xl-2l", 2, 1280, head_outputs=2 * LLAMAGEN_VOCAB,
        source="CIAR's device (Ye et al. 2026) with two XL blocks: the 2-layer alternative (issue 17)",
    ),  # 104M  # fmt: skip
}
