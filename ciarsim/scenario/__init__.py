"""Scenarios: the frozen schema, YAML loading with one-line errors, dotted overrides, sweep expansion.
May import: pydantic, yaml, ciarsim.errors (and ciarsim.io); never nn, sim, policies, runner, report or cli.

    from ciarsim.scenario import load_scenario, expand
    scenario = load_scenario("scenarios/4g.yaml", ["network.rtt_ms=80"])
    for point in expand(scenario): ...
"""

from ciarsim.scenario.loader import dump_scenario, load_scenario, parse_scenario, scenario_json_schema
from ciarsim.scenario.schema import POLICY_NAMES, PolicyConfig, Scenario
from ciarsim.scenario.sweep import Point, expand, replication_seed, scenario_key

__all__ = [
    "POLICY_NAMES",
    "Point",
    "PolicyConfig",
    "Scenario",
    "dump_scenario",
    "expand",
    "load_scenario",
    "parse_scenario",
    "replication_seed",
    "scenario_json_schema",
    "scenario_key",
]
