"""ciarsim: a discrete-event simulator of cloud-edge collaborative autoregressive image generation.

Real PyTorch models decide what happens (the decision layer, ``ciarsim.nn`` and
``ciarsim.policies``); a SimPy world decides how long it takes (the timing layer, ``ciarsim.sim``).
See ``docs/`` for the architecture.

The Python API (``docs/python-api.md``): ``ciarsim.run(scenario, overrides=[...], out=...)`` and
``ciarsim.load(folder)`` return a ``Results`` (the tables of a results folder), and
``ciarsim.plots`` draws each report figure from one as a matplotlib Figure. They are imported on
first use, so ``import ciarsim`` stays light (no torch, no matplotlib).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {"run": "ciarsim.api", "load": "ciarsim.api", "Results": "ciarsim.api"}
_MODULES = {"plots": "ciarsim.report.plots", "api": "ciarsim.api"}


def __getattr__(name: str):
    """``ciarsim.run`` / ``load`` / ``Results`` / ``plots``, imported when first used."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'ciarsim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_MODULES])


__all__ = ["Results", "load", "plots", "run", "__version__"]
