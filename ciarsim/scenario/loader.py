"""Scenario files in and out: strict YAML, ``--set`` overrides, one short line per problem.

``load_scenario`` is the only place that reads a scenario file. It parses YAML with a safe loader
that also refuses duplicate keys and reads ``1e3`` as a number, applies ``--set dotted.path=value``
overrides, then validates strictly (a quoted ``"5"`` is not a number). Every problem becomes one
line ``<file>: <field path>: <what is expected>, got <value> (line N)``; the lines are raised
together as one ``ScenarioError``. Relative paths the file writes (``PATH_FIELDS``, also as
sweep and zip values) are resolved against the file's folder; paths given by ``--set`` and the
defaults stay relative to the working directory, where the user typed them.

The parts live beside it, one job each: ``yamlfile`` (strict YAML with lines), ``dotted`` (field
paths and ``--set``), ``messages`` (pydantic errors -> lines), ``jsonschema`` (schema export). Their
public names stay importable from here.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ciarsim.errors import ScenarioError
from ciarsim.scenario.dotted import (  # noqa: F401 - re-exported
    PathError, assign, check_leaf, find_policy, format_loc, locate, model_at, policy_label, set_path,
    kind_of, show, split_path,
)  # fmt: skip
from ciarsim.scenario.jsonschema import CLASS_HELP, FIELD_HELP, field_help, scenario_json_schema  # noqa: F401
from ciarsim.scenario.messages import (  # noqa: F401 - re-exported
    MAX_PROBLEMS, canonical_loc, explain, problems, scenario_error, validate,
)  # fmt: skip
from ciarsim.scenario.schema import Scenario
from ciarsim.scenario.sweep import expand
from ciarsim.scenario.yamlfile import Loc, line_of, parse_yaml, yaml_problem  # noqa: F401



def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Read, override and validate one scenario file (and check that its sweep expands).

    ``overrides``: ``"dotted.path=value"`` strings, each value parsed as YAML (``80``,
    ``[20, 50]``, ``'"quoted text"'``), applied in order. Raises ``ScenarioError``.
    """
    source = str(path)
    return parse_scenario(_read(Path(path), source), source, overrides, Path(path).parent)


def parse_scenario(
    text: str, source: str = "<scenario>", overrides: Iterable[str] = (),
    base_dir: str | Path | None = None,
) -> Scenario:
    """``load_scenario`` for YAML text already in memory; ``source`` names it in messages.
    ``base_dir``: the folder the text's relative paths are relative to (None: keep them)."""
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: {yaml_problem(exc)}") from None
    if data is None:
        raise ScenarioError(
            f"{source}: the file is empty; a scenario is a mapping of sections "
            "(name, workload, models, network, policies, sweep)"
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: the top level must be a mapping of sections (name, workload, models, "
            f"network, policies, sweep), got {kind_of(data)} {show(data)}"
        )
    if base_dir is not None:
        resolve_paths(data, Path(base_dir))
    overridden = [_apply_override(data, text_, source) for text_ in overrides]
    scenario = validate(data, source, overridden)
    lines = dict(getattr(data.get("sweep"), "lines", None) or {})
    for loc, _ in overridden:  # entries an override wrote have no line in the file
        if loc[0] == "sweep":
            lines = {k: v for k, v in lines.items() if len(loc) > 1 and k != loc[1]}
    expand(scenario, source=source, sweep_lines=lines)
    return scenario


PATH_FIELDS = (
    ("models", "checkpoints"), ("network", "uplink_trace"), ("network", "downlink_trace"),
    ("output_dir",),
)  # fmt: skip


def resolve_paths(data: Mapping, base_dir: Path) -> None:
    """Rewrite in place the relative paths of ``PATH_FIELDS`` that raw ``data`` holds (as fields
    or as sweep / zip values) as ``base_dir / path``."""
    _map_paths(data, lambda path: _under(base_dir, path))


def _rebase_paths(data: Mapping, base_dir: Path) -> None:
    """Rewrite the relative (working-directory) paths of ``PATH_FIELDS`` in ``data`` relative to
    ``base_dir``: the inverse of ``resolve_paths``."""
    _map_paths(data, lambda path: _from(base_dir, path))


def _map_paths(data: Mapping, fn: Callable[[str], str]) -> None:
    """Apply ``fn`` in place to every string at a ``PATH_FIELDS`` location of raw ``data``, and to
    the string values of sweep and zip entries of those paths."""
    for loc in PATH_FIELDS:
        node: Any = data
        for key in loc[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(loc[-1]), str):
            node[loc[-1]] = fn(node[loc[-1]])
    dotted = {".".join(loc) for loc in PATH_FIELDS}
    groups = [data.get("sweep"), *(data.get("zip") if isinstance(data.get("zip"), list) else [])]
    for group in groups:
        for key, values in group.items() if isinstance(group, dict) else ():
            if key in dotted and isinstance(values, list):
                values[:] = [fn(v) if isinstance(v, str) else v for v in values]


def _from(base_dir: Path, path: str) -> str:
    """Relative ``path`` (from the working directory) as seen from ``base_dir``."""
    return path if not path or os.path.isabs(path) else os.path.relpath(path, base_dir)


def _under(base_dir: Path, path: str) -> str:
    """``path`` relative to ``base_dir``, normalised (``scenarios/../models`` -> ``models``);
    absolute and empty paths unchanged."""
    return path if not path or os.path.isabs(path) else os.path.normpath(base_dir / path)


def _read(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        siblings = sorted(path.parent.glob("*.y*ml")) if path.parent.is_dir() else []
        stems = {p.stem: p for p in siblings}
        close = difflib.get_close_matches(path.stem, list(stems), n=1, cutoff=0.5)
        hint = f" (did you mean {stems[close[0]]}?)" if close else ""
        raise ScenarioError(f"{source}: file not found{hint}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{source}: is a directory, expected a scenario .yaml file") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read ({exc.strerror})") from None


def _apply_override(data: dict, text: str, source: str) -> tuple[Loc, str]:
    """Apply one ``dotted.path=value`` to ``data``; returns (location, text) for blame."""
    path, sep, raw = text.partition("=")
    if not sep:
        raise ScenarioError(f"{source}: --set {text}: expected dotted.path=value")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc)
        message = f"{source}: --set {text}: the value is not valid YAML ({problem})"
        raise ScenarioError(message) from None
    try:
        return set_path(data, path, value), text
    except PathError as exc:
        raise ScenarioError(f"{source}: --set {text}: {exc}") from None


def raw_scenario(text: str) -> dict | None:
    """The raw mapping of scenario YAML text (a saved ``scenario.yaml``), not validated; ``{}`` for
    an empty text, None when it is not YAML or not a mapping. For readers of finished results."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return {} if data is None else data if isinstance(data, dict) else None


def dump_yaml(data: dict) -> str:
    """``data`` as block YAML in its own key order (e.g. a ``zip:`` group to paste into a scenario)."""
    return yaml.safe_dump(data, sort_keys=False)


def dump_scenario(scenario: Scenario, base_dir: str | Path | None = None) -> str:
    """Canonical YAML of the fully resolved scenario: every field in schema order (a policy's
    ``name`` first); ``parse_scenario`` reads it back equal. Same scenario -> same text.
    ``base_dir``: the folder the text will be saved in; relative paths are rewritten relative to
    it, so that ``load_scenario`` of the saved file finds the same files."""
    data = scenario.model_dump(mode="json")
    if base_dir is not None:
        _rebase_paths(data, Path(base_dir))
    data["policies"] = [{"name": p.pop("name"), **p} for p in data["policies"]]
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
