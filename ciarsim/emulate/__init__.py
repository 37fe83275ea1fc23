"""The emulator: decode traces replayed between two real processes over kernel TCP through a
shaped packet relay (``ciarsim emulate``; docs/validation.md).

Entry point: ``emulate_scenario`` (api.py). Modules: shaper (the relay's pure scheduling), relay
(the relay process), peers (client and server processes), program (what the client replays),
session (namespaces and processes), probe (flows that test the relay). Imported only by the CLI
and experiments; no torch here (traces come through the runner's cache).
"""

from ciarsim.emulate.api import EmulationResult, emulate_scenario

__all__ = ["EmulationResult", "emulate_scenario"]
