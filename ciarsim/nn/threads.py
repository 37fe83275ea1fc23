"""torch's CPU thread count, set through the decision layer (the runner's workers and ``ciarsim
train`` ask for it without importing torch themselves)."""

from __future__ import annotations

import torch


def set_torch_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch's intra-op work in this process (a worker's or the CLI's)."""
    torch.set_num_threads(threads)
