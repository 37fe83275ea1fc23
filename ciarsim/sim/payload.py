"""Message sizes: what crosses the network for one OP_CLOUD exchange (bytes).

Uplink: message header + prompt text (if sent) + token ids at ``token_bits`` each (default
``ceil(log2 V)`` of the nominal cloud model, packed) + interval features at ``feature_dim``
values each (default: the nominal cloud model's width, 1280 for LlamaGen-XL) in
``feature_dtype`` + full distributions at V values each in ``dist_dtype``. Downlink: header +
the token ids. ``int8`` features carry one fp16 scale per vector (symmetric per-vector
quantisation; a ciarsim choice). Per-packet headers are the link's business
(``ciarsim.sim.link``), not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ciarsim.scenario.schema import PayloadConfig
from ciarsim.sim.nominal import NominalModel

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
INT8_SCALE_BYTES = 2


def message_bytes(
    payload: PayloadConfig,
    cloud: NominalModel,
    *,
    header_bytes: int,
    prompt_bytes: int = 0,
    tokens: int = 0,
    features: int = 0,
    dists: int = 0,
) -> int:
    """Size of one message (bytes): header + ``prompt_bytes`` + ``tokens`` ids + ``features``
    feature vectors + ``dists`` probability vectors, encoded per ``payload``."""
    token_bits = payload.token_bits or cloud.token_bits
    dim = payload.feature_dim or cloud.dim
    per_feature = dim * DTYPE_BYTES[payload.feature_dtype]
    if payload.feature_dtype == "int8":
        per_feature += INT8_SCALE_BYTES
    return (
        header_bytes
        + prompt_bytes
        + (tokens * token_bits + 7) // 8
        + features * per_feature
        + dists * cloud.vocab * DTYPE_BYTES[payload.dist_dtype]
    )


@dataclass(frozen=True)
class PayloadSizer:
    """``message_bytes`` bound to one world's encoding, header and prompt size."""

    payload: PayloadConfig
    cloud: NominalModel
    header_bytes: int
    prompt_bytes: int

    def up(self, prompt_up: int, tokens_up: int, features_up: int, dists_up: int) -> int:
        """Uplink bytes of one OP_CLOUD row's fields."""
        return message_bytes(
            self.payload, self.cloud, header_bytes=self.header_bytes,
            prompt_bytes=self.prompt_bytes if prompt_up else 0,
            tokens=tokens_up, features=features_up, dists=dists_up,
        )  # fmt: skip

    def down(self, tokens_down: int) -> int:
        """Downlink bytes for ``tokens_down`` token ids."""
        return message_bytes(
            self.payload, self.cloud, header_bytes=self.header_bytes, tokens=tokens_down
        )
