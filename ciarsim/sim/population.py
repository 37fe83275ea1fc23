"""A mixed population in one world: which group each arrival belongs to, and each group's
device costs, network, capacity tables and radio (``ciarsim.scenario.population``).

Groups are drawn from the shares by the world's own generator (component ``population``,
index 0): one draw per image under Poisson arrivals (each image on its own phone), one per
device in a closed loop. A world without a population has one implicit group (the scenario's
device and network) and draws nothing, so a population of one group of share 1 with no
overrides replays exactly as the plain scenario. Units: ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ciarsim.scenario.schema import ArrivalConfig, DeviceConfig, ModelsConfig, NetworkConfig
from ciarsim.sim.capacity import CapacityTable, link_tables
from ciarsim.sim.costs import CostModel
from ciarsim.sim.energy import RadioModel, power_w, radio_model, resolve_radio


@dataclass(frozen=True)
class Group:
    """What a phone of one group runs on."""

    name: str
    device: DeviceConfig
    device_cost: CostModel
    network: NetworkConfig
    tables: tuple[CapacityTable, CapacityTable] | None
    radio: RadioModel
    device_power_w: float


def build_groups(models: ModelsConfig, network: NetworkConfig, population: list,
                 tables: tuple[CapacityTable, CapacityTable] | None) -> list[Group]:  # fmt: skip
    """One ``Group`` per population group (their overrides over the scenario's device and
    network), or the scenario's own as a single group named '' when ``population`` is empty.
    ``tables``: the scenario network's capacity tables (loaded here when None and needed)."""
    specs = [(g.name, g.device or models.device, g.network or network) for g in population]
    specs = specs or [("", models.device, network)]
    groups = []
    for name, dev, net in specs:
        where = "models.device" if dev is models.device else f"population.{name}.device"
        tab = tables if net is network else None
        if net.capacity == "trace" and tab is None:
            tab = link_tables(net)
        groups.append(Group(
            name, dev, CostModel.from_config(dev, where), net, tab,
            radio_model(resolve_radio(net.radio, net.capacity)),
            power_w(dev.hardware, dev.runtime),
        ))  # fmt: skip
    return groups


def draw_groups(groups: list[Group], population: list, arrival: ArrivalConfig, images: int,
                rng_factory) -> np.ndarray:  # fmt: skip
    """Group index per phone index: per image under Poisson arrivals, per device in a closed
    loop (``images`` or ``devices`` draws from ``rng_factory('population', 0)``); all 0 without
    a population."""
    n = images if arrival.kind != "closed_loop" else min(arrival.devices, images)
    if not population:
        return np.zeros(n, dtype=np.int64)
    shares = np.array([g.share for g in population], dtype=np.float64)
    return rng_factory("population", 0).choice(len(groups), size=n, p=shares / shares.sum())
