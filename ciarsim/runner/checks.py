"""What a scenario refers to outside itself: capacity traces, the checkpoint folder, the names
of nominal models, hardware and runtimes (looked up in the shipped cost tables) and external
protocols (imported, and given their parameters).

Loading a scenario never opens them (``ciarsim.scenario.loader``); these checks do, for
``ciarsim scenarios validate`` and before ``ciarsim run`` decodes anything (``load_checked``). They
live in the runner because they reach into the layers below the scenario: the sim's cost tables and
trace importers, the policies' plugin loader. Every sweep point is
checked, each (field, path) once; each problem is one line naming the scenario file, the field
and the path tried, or the sweep point.
"""

from __future__ import annotations

from pathlib import Path

from ciarsim.errors import CiarsimError, ScenarioError
from ciarsim.scenario.loader import load_scenario
from ciarsim.scenario.schema import Scenario


def load_checked(path: str | Path, overrides: list[str] = (), checkpoints: bool = False) -> Scenario:
    """Load a scenario and check what it refers to (in every sweep point): model, hardware and
    runtime names, trace files, external protocols, and with ``checkpoints`` the checkpoint
    folder. Raises one ``ScenarioError`` listing every problem."""
    scenario = load_scenario(path, overrides)
    source = str(path)
    problems = (name_problems(scenario, source) + trace_problems(scenario, source)
                + protocol_problems(scenario, source))  # fmt: skip
    if checkpoints:
        problems += checkpoint_problems(scenario, source)
    if problems:
        raise ScenarioError("\n".join(problems))
    return scenario


def validate_file(path: str | Path, overrides: list[str] = ()) -> tuple[Scenario, int]:
    """``ciarsim scenarios validate`` for one file: everything ``load_checked`` checks (the
    checkpoint folder too) and what ``run`` checks before decoding (``preflight``: trained models,
    built policies), the file's name in front. Returns the scenario and its number of sweep points."""
    from ciarsim.runner.run import preflight  # noqa: PLC0415
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415

    scenario = load_checked(path, overrides, checkpoints=True)
    try:
        preflight(scenario)
    except CiarsimError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    return scenario, len(expand(scenario))


def trace_problems(scenario: Scenario, source: str) -> list[str]:
    """One line per capacity-trace file of any sweep point that is missing, unreadable, malformed
    or empty (read with the importer the run uses)."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415
    from ciarsim.sim.capacity import load_trace  # noqa: PLC0415 - sim layer, loaded lazily

    seen, out = set(), []
    for point in expand(scenario):
        net = point.scenario.network
        if net.capacity != "trace":
            continue
        pairs = (("uplink_trace", net.uplink_trace), ("downlink_trace", net.downlink_trace))
        for field, path in pairs:
            key = (field, path, net.trace_format)
            if key in seen:
                continue
            seen.add(key)
            try:
                load_trace(path, net.trace_format, f"network.{field}")
            except CiarsimError as exc:
                out.append(f"{source}: {exc}")
    return out


def checkpoint_problems(scenario: Scenario, source: str) -> list[str]:
    """One line per checkpoint folder (``models.checkpoints``, of any sweep point) that is not
    an existing folder."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415

    out = []
    for root in dict.fromkeys(p.scenario.models.checkpoints for p in expand(scenario)):
        if not Path(root).is_dir():
            what = "is not a folder" if Path(root).exists() else "does not exist"
            out.append(f"{source}: models.checkpoints: the checkpoint folder '{root}' {what} "
                       "(relative paths in a scenario file are relative to its folder)")
    return out


def name_problems(scenario: Scenario, source: str) -> list[str]:
    """One line per unknown nominal model, hardware or runtime: of the scenario itself, or of a
    sweep point (``sweep:`` / ``zip:`` values), naming the point and its swept values."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415
    from ciarsim.sim.costs import validate_names  # noqa: PLC0415 - sim layer, loaded lazily

    def problem(models) -> str | None:
        try:
            validate_names(models)
        except ScenarioError as exc:
            return str(exc)
        return None

    base = problem(scenario.models)
    out = [f"{source}: {base}"] if base else []
    for point in expand(scenario):
        text = problem(point.scenario.models)
        line = f"{source}: sweep point {point.index + 1} ({point.label}): {text}"
        if text and text != base and line not in out:
            out.append(line)
    return out


def protocol_problems(scenario: Scenario, source: str) -> list[str]:
    """One line per external protocol (``{name: "module:Class"}``) of any sweep point that cannot
    be imported or refuses its parameters."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415
    from ciarsim.policies import plugin  # noqa: PLC0415 - decision layer, loaded lazily

    out: list[str] = []
    for point in expand(scenario):
        for policy in point.scenario.policies:
            if policy.name != "plugin":
                continue
            try:
                plugin.make(policy)
            except CiarsimError as exc:
                line = f"{source}: {exc}"
                out += [line] if line not in out else []
    return out
