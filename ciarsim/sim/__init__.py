"""The timing layer: a SimPy world that replays decode traces under devices, links and a cloud.
May import: simpy, numpy, ciarsim.scenario, ciarsim.trace, io, errors; never nn, policies, runner, report, cli or torch.

Public entry points: ``simulate`` (world.py), ``SimRecords`` (records.py), ``CostModel`` /
``validate_names`` / ``known_models`` / ``known_hardware`` (costs/), ``message_bytes``
(payload.py), ``Link`` (link.py) and the capacity-trace importers (capacity.py). SimPy is
imported only inside this package.
"""

from ciarsim.sim.capacity import CapacityTable, OpportunityTrace, load_trace, write_canonical
from ciarsim.sim.costs import (
    CostModel, StepCost, known_hardware, known_models, known_runtimes, validate_names,
)  # fmt: skip
from ciarsim.sim.link import Link, TransferRecord
from ciarsim.sim.payload import message_bytes
from ciarsim.sim.records import IMAGE_COLUMNS, LANES, SEGMENT_COLUMNS, SimRecords
from ciarsim.sim.world import World, simulate

__all__ = [
    "CapacityTable", "CostModel", "IMAGE_COLUMNS", "LANES", "Link", "OpportunityTrace",
    "SEGMENT_COLUMNS", "SimRecords", "StepCost", "TransferRecord", "World", "known_hardware", "known_models",
    "known_runtimes", "load_trace", "message_bytes", "simulate", "validate_names",
    "write_canonical",
]  # fmt: skip
