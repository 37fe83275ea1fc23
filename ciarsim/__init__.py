"""ciarsim: a discrete-event simulator of cloud-edge collaborative autoregressive image generation.

Real PyTorch models decide what happens (the decision layer, ``ciarsim.nn`` and
``ciarsim.policies``); a SimPy world decides how long it takes (the timing layer, ``ciarsim.sim``).
See ``docs/`` and DESIGN notes for the architecture.
"""

__version__ = "0.1.0"
