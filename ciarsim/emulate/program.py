"""What the emulated client replays: each image's ops priced and sized exactly as the simulator
prices and sizes them.

Device ms come from the simulator's ``Device.op_ms`` (the device's ``CostModel``, the plain-head
variant when the trace says so, as ``World.run`` does); message bytes from its ``PayloadSizer``;
which answer each op waits for from the world's own dependency resolution (trace format v2's
``dep``). The cloud's compute is priced by the server process itself (the simulator's batching
server on a real clock, ``ciarsim.emulate.peers``). Units: ms, bytes.
"""

from __future__ import annotations

from ciarsim.scenario.schema import Scenario
from ciarsim.sim.costs import CostModel, validate_names
from ciarsim.sim.device import Device
from ciarsim.sim.payload import PayloadSizer
from ciarsim.sim.world import _waits as exchange_waits  # the replay's own dep resolution
from ciarsim.trace import OP_DEVICE, TraceSet


def programs(traces: TraceSet, sc: Scenario) -> list[dict]:
    """Per image of ``traces``: ``{"image": prompt index, "ops": [[kind, wait, device ms, up
    bytes, down bytes, steps, new tokens, context, prefill], ...]}`` (the client's format)."""
    models, net = sc.models, sc.network
    validate_names(models)
    dev_cost = CostModel.from_config(models.device, "models.device")
    if traces.meta.get("device_head") == "plain":
        dev_cost = dev_cost.with_plain_head()
    device = Device(0, dev_cost, models.device.text_tokens, models.device.cfg_rows)
    cloud_cost = CostModel.from_config(models.cloud, "models.cloud")
    sizer = PayloadSizer(models.payload, cloud_cost.model, net.message_header_bytes,
                         sc.workload.prompt_bytes)  # fmt: skip
    waits = exchange_waits(traces)
    rows = traces.ops.tolist()
    lo = traces.offsets.tolist()
    out = []
    for i in range(len(traces)):
        ops = []
        for j in range(lo[i], lo[i + 1]):
            kind, steps, new, ctx, prompt_up, t_up, f_up, d_up, t_down = rows[j][:9]
            if kind == OP_DEVICE:
                ms = device.op_ms(steps, new, ctx, prompt_up) if (steps or prompt_up) else 0.0
                ops.append([0, waits[j], ms, 0, 0, 0, 0, 0, 0])
            else:
                up, down = sizer.up(prompt_up, t_up, f_up, d_up), sizer.down(t_down)
                ops.append([1, waits[j], 0.0, up, down, steps, new, ctx, prompt_up])
        out.append({"image": int(traces.images[i]), "ops": ops})
    return out
