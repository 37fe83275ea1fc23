"""Decision models: procedural data, VQ tokenizer, cloud GPT, device model with Inter-Head, their training and quality metrics.
May import: torch, numpy, safetensors, ciarsim.io and ciarsim.errors; never scenario, sim, policies, runner, report or cli.

One file per model (``vq``, ``gpt``, ``device``), packages per concern (``data``, ``train``,
``quality``), ``checkpoints`` (safetensors + JSON cards, verified), ``splits`` (train /
validation / test prompts), ``profile`` (measured step latency).
"""
