"""Scenario files in and out: strict YAML, ``--set`` overrides, one short line per problem.

``load_scenario`` is the only place that reads a scenario file. It parses YAML with a safe loader
that also refuses duplicate keys and reads ``1e3`` as a number, applies ``--set dotted.path=value``
overrides, then validates strictly (a quoted ``"5"`` is not a number). Every problem becomes one
line ``<file>: <field path>: <what is expected>, got <value> (line N)``; the lines are raised
together as one ``ScenarioError``. Relative paths the file writes (``PATH_FIELDS``, also as
sweep and zip values) are resolved against the file's folder; paths given by ``--set`` and the
defaults stay relative to the working directory, where the user typed them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import (
    POLICY_NAMES, GatedPolicy, PolicyConfig, Scenario, external_protocol,
)  # fmt: skip

MAX_PROBLEMS = 20  # lines in one error message; the rest are counted

Loc = tuple[Any, ...]  # a canonical field location: ("policies", 3, "tau"), ("network", "rtt_ms")


# ---------------------------------------------------------------------------------------------
# YAML: safe, no duplicate keys, remembers lines


class _Map(dict):
    """A YAML mapping that remembers the 1-based line of each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}


class _Seq(list):
    """A YAML sequence that remembers the 1-based line of each item."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate keys and reads ``1e3`` (YAML 1.2) as a float."""


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = _Map()
    yield data
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: construct_mapping reports it
            continue
        if first is not None:
            problem = f"duplicate key {key!r} (first at line {first})"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:  # after construct_mapping: merge keys are flattened
        data.lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_seq(loader: _Loader, node: yaml.SequenceNode):
    data = _Seq()
    yield data
    data.extend(loader.construct_sequence(node))
    data.lines = [item.start_mark.line + 1 for item in node.value]


_FLOAT_1_2 = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$""", re.X
)  # 1e3, 2.5E-4: floats in YAML 1.2, strings to PyYAML's YAML 1.1 resolver
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789"))


def _parse_yaml(text: str) -> Any:
    """Parse one YAML document; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line L, column C: problem`` for a YAML syntax or construction error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "'\\t'" in problem:
        problem += " (indent YAML with spaces, not tabs)"
    elif "expected <block end>" in problem:
        problem += " (check the indentation)"
    return f"{where}{problem}"


# ---------------------------------------------------------------------------------------------
# dotted paths and policy addressing


class PathError(ValueError):
    """A dotted path cannot be followed or set; the text says why (without the file name)."""


def split_path(path: str) -> list[str]:
    """``"network.rtt_ms"`` -> ``["network", "rtt_ms"]``; ``sweep.<dotted key>`` stays whole."""
    parts = path.strip().split(".")
    if not path.strip() or any(not p for p in parts):
        raise PathError(f"'{path}' is not a dotted field path like network.rtt_ms")
    if parts[0] == "sweep" and len(parts) > 1:
        return ["sweep", ".".join(parts[1:])]
    return parts


def policy_label(item: Any) -> str | None:
    """The label a raw policy mapping will display (``label``, else the name, gated-<signal>)."""
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("label"), str):
        return item["label"]
    name = item.get("name")
    if name == "gated":
        return f"gated-{item.get('signal', GatedPolicy.model_fields['signal'].default)}"
    if name == "ciar_batched":
        return f"ciar_batched-{item.get('mode', 'exact')}"
    if name == "plugin" and isinstance(item.get("protocol"), str):
        return item["protocol"].rsplit(":", 1)[-1]
    if external_protocol(name):
        return name.rsplit(":", 1)[-1]
    return name if isinstance(name, str) else None


def find_policy(policies: list, token: str) -> int:
    """Index of the policy addressed by ``token``: its label, its name if unique, or its index."""
    labels = [policy_label(p) for p in policies]
    if labels.count(token) == 1:
        return labels.index(token)
    names = [p.get("name") if isinstance(p, Mapping) else None for p in policies]
    by_name = [i for i, name in enumerate(names) if name == token]
    if len(by_name) == 1:
        return by_name[0]
    if token.isdigit() and int(token) < len(policies):
        return int(token)
    shown = ", ".join(str(x) for x in labels)
    if len(by_name) > 1 or labels.count(token) > 1:
        raise PathError(f"'{token}' matches several policies ({shown}); address one by its label")
    hint = _suggest(token, labels)
    raise PathError(f"no policy labelled '{token}'{hint}; policies here: {shown}")


def locate(data: Mapping, path: str) -> Loc:
    """The canonical location of ``path`` in ``data``: policy labels become list indices."""
    parts = split_path(path)
    if parts[0] != "policies" or len(parts) == 1:
        return tuple(parts)
    items = data.get("policies")
    items = _default_section(("policies",), data) if items is None else items
    if not isinstance(items, list):
        raise PathError(f"policies is {show(items)}, not a list of policies")
    return ("policies", find_policy(items, parts[1]), *parts[2:])


def assign(data: dict, loc: Loc, value: Any) -> None:
    """Set the value at ``loc`` in place; a missing section is created from its schema default."""
    node: Any = data
    for i, key in enumerate(loc[:-1]):
        child = node[key] if isinstance(node, list) else node.get(key)
        if child is None:
            child = node[key] = _default_section(loc[: i + 1], data)
        elif not (isinstance(child, dict) or isinstance(child, list) and i == 0):
            where = format_loc(loc[: i + 1], data)
            raise PathError(f"{where} is a value ({show(child)}), not a section")
        node = child
    node[loc[-1]] = value


def _default_section(loc: Loc, data: Mapping) -> Any:
    """What an absent section means, as raw data: ``network`` -> ``{capacity: ideal}``."""
    parent = model_at(loc[:-1], data)
    field = parent.model_fields.get(loc[-1]) if parent is not None else None
    default = field.default if field is not None else None
    if isinstance(default, BaseModel):
        return default.model_dump(exclude_unset=True)
    if isinstance(default, list):
        return [m.model_dump(exclude_unset=True) for m in default]
    return {}


def set_path(data: dict, path: str, value: Any) -> Loc:
    """Set dotted ``path`` in the raw scenario mapping ``data`` (in place); returns its location.

    Missing sections are created; ``policies.<label>`` addresses one policy (by label, by name if
    only one policy has it, or by index); ``sweep.<dotted path>`` sets one sweep entry.
    """
    loc = locate(data, path)
    assign(data, loc, value)
    return loc


def format_loc(loc: Iterable[Any], data: Mapping | None = None) -> str:
    """``("policies", 1, "tau")`` -> ``policies[1] (ciar).tau``; sweep keys stay dotted."""
    loc = tuple(loc)
    text = ""
    for i, key in enumerate(loc):
        if isinstance(key, int):
            text += f"[{key}]"
            if loc[:i] == ("policies",) and data is not None:
                label = _raw_policy_label(data, key)
                text += f" ({label})" if label else ""
        else:
            text += f".{key}" if text else str(key)
    return text


def _raw_policy_label(data: Mapping, index: int) -> str | None:
    items = data.get("policies")
    if not (isinstance(items, list) and 0 <= index < len(items)):
        return None
    item = items[index]
    ok = isinstance(item, Mapping) and (
        isinstance(item.get("label"), str) or item.get("name") in POLICY_NAMES
        or external_protocol(item.get("name"))
    )
    return policy_label(item) if ok else None


def show(value: Any) -> str:
    """A value as a user wrote it in YAML, shortened."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return repr(value)
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping"))  # fmt: skip
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def _suggest(word: Any, choices: Iterable[Any]) -> str:
    options = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------------------------------------
# the schema, walked by location


_POLICY_CLASSES: dict[str, type[BaseModel]] = {
    cls.model_fields["name"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in PolicyConfig.__origin__.__args__  # type: ignore[attr-defined]
}


def model_at(loc: Loc, data: Mapping) -> type[BaseModel] | None:
    """The schema class of the section at ``loc``; None where ``loc`` is a value or unknown."""
    model: type[BaseModel] | None = Scenario
    for i, key in enumerate(loc):
        if loc[:i] == ("policies",):
            items = data.get("policies")
            ok = isinstance(key, int) and isinstance(items, list) and 0 <= key < len(items)
            item = items[key] if ok else None
            model = _POLICY_CLASSES.get(item.get("name")) if isinstance(item, Mapping) else None
        elif i == 0 and key == "policies":
            model = None  # a list; the next key indexes it
        elif model is not None and isinstance(key, str) and key in model.model_fields:
            model = _section_class(model, key)
        else:
            return None
    return model


def _section_class(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    ann = model.model_fields[field].annotation
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def check_leaf(loc: Loc, data: Mapping) -> None:
    """Raise ``PathError`` unless ``loc`` names one value field of the scenario (for sweeps)."""
    for i, key in enumerate(loc):
        if isinstance(key, int):
            continue
        parent = model_at(loc[:i], data)
        if parent is None:
            raise PathError(f"{format_loc(loc[:i], data)} is a value, not a section")
        fields = [f for f in parent.model_fields if not (parent is Scenario and f == "sweep")]
        if key not in fields:
            where = f" in {format_loc(loc[:i], data)}" if i else ""
            raise PathError(f"unknown field '{key}'{where}{_suggest(key, fields)}")
    model = model_at(loc, data)
    if model is not None or loc == ("policies",):
        fields = ", ".join(model.model_fields) if model else "policies.<label>.<field>"
        raise PathError(f"names a section, not a value; sweep one of its fields: {fields}")


# ---------------------------------------------------------------------------------------------
# pydantic errors -> one line each

_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}  # fmt: skip
_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
          "list": "a list", "dict": "a mapping", "model": "a mapping (a section)",
          "model_attributes": "a mapping (a section)"}  # fmt: skip
_UNION_MEMBERS = ("int", "float", "str", "bool", "none")


def problems(exc: ValidationError, data: Mapping) -> list[tuple[Loc, str]]:
    """One (canonical location, explanation) per distinct problem in ``exc``."""
    out: list[tuple[Loc, str]] = []
    for err in exc.errors(include_url=False):
        loc = canonical_loc(tuple(err["loc"]), data)
        text = explain(err, loc, data)
        if loc not in [x for x, _ in out]:
            out.append((loc, text))
    return out


def canonical_loc(loc: Loc, data: Mapping) -> Loc:
    """Drop pydantic's union tags: ("policies", 1, "ciar", "tau") -> ("policies", 1, "tau")."""
    if len(loc) > 2 and loc[0] == "policies" and loc[2] in POLICY_NAMES:
        loc = loc[:2] + loc[3:]
    if len(loc) > 3 and loc[0] == "sweep" and loc[3] in _UNION_MEMBERS:
        loc = loc[:3]
    if loc == () and "policies" in data:
        loc = ("policies",)  # the only whole-scenario check: unique policy labels
    return loc


def explain(err: Mapping, loc: Loc, data: Mapping) -> str:
    """What is wrong with one field, in the words a scenario author uses."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, show(err.get("input"))
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        return f"must be {op} {_num(ctx[name])}, got {got}"
    if kind == "extra_forbidden":
        model = model_at(loc[:-1], data)
        fields = list(model.model_fields) if model else []
        listed = f" (expected one of: {', '.join(fields)})" if fields else ""
        return f"unknown key{_suggest(loc[-1], fields) or listed}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        hint = _suggest(err.get("input"), choices) if isinstance(err.get("input"), str) else ""
        return f"must be one of {', '.join(choices)}, got {got}{hint}"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        hint = _suggest(tag, POLICY_NAMES)
        return f"unknown policy '{tag}'{hint}; known policies: {', '.join(POLICY_NAMES)}"
    if kind == "union_tag_not_found":
        return f"needs a 'name': one of {', '.join(POLICY_NAMES)}"
    if loc and loc[0] == "sweep" and len(loc) == 3 and kind.endswith("_type"):
        return f"sweep values must be numbers, strings, true/false or null, got {got}"
    if kind in ("model_type", "model_attributes_type") and len(loc) == 2 and loc[0] == "policies":
        return f"must be a mapping like {{name: ciar}}, got {got}"
    base = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_from_float")
    if base in _KINDS:
        return f"must be {_KINDS[base]}, got {got}{_quote_hint(base, err.get('input'))}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {got}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    return f"{str(err['msg'])[:1].lower()}{str(err['msg'])[1:]}, got {got}"


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


_NUMBER = re.compile(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?")


def _quote_hint(expected: str, value: Any) -> str:
    if expected == "string" and value is not None and not isinstance(value, (list, dict, str)):
        return f" (quote it: '{value}')"
    if expected in ("int", "float") and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return " (remove the quotes)"
    return ""


def line_of(loc: Loc, data: Any) -> int | None:
    """1-based line in the file of the deepest part of ``loc`` that the file wrote, if known."""
    line = None
    node = data
    for key in loc:
        lines = getattr(node, "lines", None)
        if isinstance(node, dict) and key in node and lines and key in lines:
            line, node = lines[key], node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(lines or ()):
            line, node = lines[key], node[key]
        else:
            break
    return line


def validate(data: Mapping, source: str, overridden: Iterable[tuple[Loc, str]] = ()) -> Scenario:
    """Validate a raw scenario mapping strictly; problems raise one ``ScenarioError``.

    ``overridden``: (location, ``--set`` text) pairs, so a bad override is blamed on the option.
    """
    overridden = list(overridden)
    try:
        return Scenario.model_validate(data, strict=True)
    except ValidationError as exc:
        found = problems(exc, data)
    entries = []
    for loc, text in found:
        where = f"{format_loc(loc, data)}: " if loc else ""
        order, suffix = _origin(loc, data, overridden)
        entries.append((order, f"{source}: {where}{text}{suffix}"))
    entries.sort(key=lambda entry: entry[0])  # file lines top to bottom, then the overrides
    raise scenario_error([line for _, line in entries], source)


def _origin(loc: Loc, data: Mapping, overridden: list[tuple[Loc, str]]) -> tuple[int, str]:
    """(sort order, `` (from --set ...)`` or `` (line N)``) for the problem at ``loc``."""
    for i in reversed(range(len(overridden))):
        o, text = overridden[i]
        if loc[: len(o)] == o or loc and o[: len(loc)] == loc:
            return 10**9 + i, f" (from --set {text})"
    line = line_of(loc, data)
    return (line, f" (line {line})") if line else (10**9 - 1, "")


def scenario_error(lines: list[str], source: str) -> ScenarioError:
    """One ``ScenarioError`` holding at most ``MAX_PROBLEMS`` lines (its ``problems`` attribute)."""
    shown = lines[:MAX_PROBLEMS]
    if len(lines) > MAX_PROBLEMS:
        shown.append(f"{source}: ... and {len(lines) - MAX_PROBLEMS} more problems")
    error = ScenarioError("\n".join(shown))
    error.problems = list(lines)  # type: ignore[attr-defined]
    return error


# ---------------------------------------------------------------------------------------------
# public API


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
        data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: {_yaml_problem(exc)}") from None
    if data is None:
        raise ScenarioError(
            f"{source}: the file is empty; a scenario is a mapping of sections "
            "(name, workload, models, network, policies, sweep)"
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: the top level must be a mapping of sections (name, workload, models, "
            f"network, policies, sweep), got {_kind_of(data)} {show(data)}"
        )
    if base_dir is not None:
        resolve_paths(data, Path(base_dir))
    overridden = [_apply_override(data, text_, source) for text_ in overrides]
    scenario = validate(data, source, overridden)
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415 - sweep imports this module

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
        value = _parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc)
        message = f"{source}: --set {text}: the value is not valid YAML ({problem})"
        raise ScenarioError(message) from None
    try:
        return set_path(data, path, value), text
    except PathError as exc:
        raise ScenarioError(f"{source}: --set {text}: {exc}") from None


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


def scenario_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of scenario files, with a description on every field."""
    generated = Scenario.model_json_schema(mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ciarsim scenario",
        "description": (
            "One ciarsim experiment: workload x models x network x policies, swept over 'sweep'. "
            "Units are in the field names (_ms, _mbps, _bytes). See docs/scenario-format.md."
        ),
        **generated,
    }
    classes = {c.__name__: c for c in _all_models()}
    _describe(schema, Scenario)
    for name, sub in schema.get("$defs", {}).items():
        if name in classes:
            _describe(sub, classes[name])
    return schema


def _describe(node: dict, cls: type[BaseModel]) -> None:
    if cls is not Scenario:
        node.setdefault("description", CLASS_HELP.get(cls.__name__, ""))
    for field, prop in node.get("properties", {}).items():
        text = field_help(cls, field)
        if text:
            prop["description"] = text + _range_text(prop)


_RANGE_KEYS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<"))  # fmt: skip


def _range_text(prop: dict) -> str:
    """`` Range: >= 0, < 60000.`` from a property's bounds (also inside ``anyOf``), else ''."""
    for option in [prop, *prop.get("anyOf", [])]:
        bounds = [f"{op} {_num(option[k])}" for k, op in _RANGE_KEYS if k in option]
        if bounds:
            return f" Range: {', '.join(bounds)}."
    return ""


def field_help(cls: type[BaseModel], field: str) -> str | None:
    """The one-line help of ``cls.field`` (looked up along the class hierarchy)."""
    for klass in cls.__mro__:
        text = FIELD_HELP.get(f"{klass.__name__}.{field}")
        if text:
            return text
    return None


def _all_models() -> list[type[BaseModel]]:
    """Every schema class reachable from ``Scenario``."""
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Scenario, *_POLICY_CLASSES.values()]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        todo.extend(c for f in cls.model_fields if (c := _section_class(cls, f)) is not None)
    return found


CLASS_HELP = {
    "WorkloadConfig": "What is generated and how requests arrive.",
    "ArrivalConfig": "How image requests arrive: closed_loop (phones back to back) or poisson.",
    "ModelsConfig": "Decision-model checkpoints and the nominal (real-scale) models that set costs.",
    "CloudConfig": "The shared cloud GPU server: nominal model, hardware, runtime, batching.",
    "DeviceConfig": "The phone or board: nominal model and the hardware it is costed on.",
    "PayloadConfig": "How messages are encoded (sets bytes on the wire).",
    "HardwareOverrides": "Replace numbers of the hardware profile (hypothetical chips).",
    "NetworkConfig": "The uplink and downlink between one phone and the cloud.",
    "BasePolicy": "Cloud only: the device sends the prompt, the cloud generates every token.",
    "DeviceOnlyPolicy": "Every token on the device, no network (quality lower bound).",
    "SDPolicy": "Speculative decoding: the device drafts gamma tokens, the cloud verifies them.",
    "LanternPolicy": "LANTERN: speculative decoding with relaxed (latent-neighbourhood) acceptance.",
    "CodeSplitPolicy": "CoDe-style split: the cloud makes the first tokens, the device the rest.",
    "GatedPolicy": "CIAR's flow with another uncertainty signal deciding which tokens go to the cloud.",
    "CiarPolicy": "CIAR: cloud prefix, Inter-Head intervals on the device, uncertain tokens verified.",
    "CiarPipelinedPolicy": "CIAR whose device keeps drafting while a verification is in flight (same tokens).",
    "CiarBatchedPolicy": "CIAR with one message per window of drafts (exact: same tokens; relaxed: lossy).",
    "CloudBurstPolicy": "CIAR whose answers also carry the cloud's next k tokens.",
    "PluginPolicy": "A protocol outside the package; usually written {name: 'module:Class', ...params}.",
    "AdaptivePolicy": "Picks, per sweep point, the fastest candidate (predicted on validation prompts) within a quality floor.",
    "OraclePolicy": "Upper bound: exactly the tokens the cloud would change are sent to it.",
}

FIELD_HELP = {
    # scenario
    "Scenario.name": "Scenario name; used for the default output folder reports/<name>.",
    "Scenario.description": "Free text shown in the report.",
    "Scenario.seed": "Root seed of every random draw (decoding and network).",
    "Scenario.replications": "Independent timing replications per point (network/arrival draws).",
    "Scenario.output_dir": "Output folder (relative to the scenario file's folder); null: reports/<name> in the working directory.",
    "Scenario.workload": "What is generated and how requests arrive.",
    "Scenario.models": "Decision-model checkpoints and nominal models/hardware for costs.",
    "Scenario.network": "Link between phone and cloud (default: ideal, transfers take no time).",
    "Scenario.policies": "Decoding policies to compare; each needs 'name', labels must be unique.",
    "Scenario.sweep": "Grid sweep: dotted field path -> list of values (e.g. network.rtt_ms: [20, 80]).",
    "Scenario.zip": "Groups of paths whose equal-length value lists move together (one grid axis per group).",
    "Scenario.population": "Mixed population on the one cloud: groups with a share of the arrivals and their own device/network (shares sum to 1).",
    # workload
    "WorkloadConfig.images": "Images (prompts) per policy and point.",
    "WorkloadConfig.prompt_start": "Index of the first prompt in the held-out prompt set.",
    "WorkloadConfig.token_grid": "Token grid side: token_grid^2 image tokens (16 -> 256 = 256 px).",
    "WorkloadConfig.prompt_bytes": "Bytes of the text prompt uploaded with a request.",
    "WorkloadConfig.arrival": "Arrival process of image requests.",
    "ArrivalConfig.kind": "closed_loop: each phone generates back to back; poisson: open arrivals.",
    "ArrivalConfig.devices": "closed_loop: number of phones sharing the images and the cloud GPU.",
    "ArrivalConfig.think_time_ms": "closed_loop: pause between a phone's images, ms.",
    "ArrivalConfig.rate_per_s": "poisson: request rate of all phones together, images/s (required).",
    # models
    "ModelsConfig.checkpoints": "Folder of the trained decision models (relative to the scenario file's folder; the default and --set values: to the working directory).",
    "ModelsConfig.cloud": "The cloud server.",
    "ModelsConfig.device": "The phone or board.",
    "ModelsConfig.payload": "Message encoding.",
    "CloudConfig.model": "Nominal cloud model: llamagen-b, -l, -xl, -xxl, -3b.",
    "CloudConfig.hardware": "Cloud GPU: h100, h200, a100.",
    "CloudConfig.runtime": "eager (plain PyTorch) or cudagraph (tuned server).",
    "CloudConfig.max_batch": "Most requests the server runs in one batched step.",
    "CloudConfig.text_tokens": "Text-conditioning tokens before the image tokens (LlamaGen T2I: 120).",
    "CloudConfig.cfg_rows": "Sequences per image per step: 2 with classifier-free guidance (LlamaGen T2I samples with CFG), 1 without.",
    "CloudConfig.overrides": "Replace hardware-profile numbers.",
    "CloudConfig.usd_per_gpu_hour": "Price of one GPU-hour in USD for the cost columns; null: the hardware's default (ciarsim/data/hardware.json, an assumption).",
    "DeviceConfig.model": "Nominal device model (ciar-device-xl: CIAR's one-layer model at XL width).",
    "DeviceConfig.hardware": "snapdragon-8-gen-3, apple-a17-pro, apple-m4, jetson-orin-nano, "
                             "jetson-agx-orin, or a GPU (h100, h200, a100).",
    "DeviceConfig.runtime": "npu (phones, boards) or eager / cudagraph (GPUs).",
    "DeviceConfig.text_tokens": "Text-conditioning tokens in the device model's context.",
    "DeviceConfig.cfg_rows": "Sequences per image per device step: 2 with classifier-free guidance, 1 without.",
    "DeviceConfig.overrides": "Replace hardware-profile numbers.",
    "PayloadConfig.feature_dtype": "Dtype of the interval features uploaded per token.",
    "PayloadConfig.feature_dim": "Width of an uploaded feature vector; null: the cloud model's width.",
    "PayloadConfig.dist_dtype": "Dtype of full probability vectors uploaded (SD upload_full_q).",
    "PayloadConfig.token_bits": "Bits per token id; null: ceil(log2(vocabulary)).",
    "HardwareOverrides.mem_bw_gbps": "Memory bandwidth, GB/s.",
    "HardwareOverrides.peak_tflops": "Peak compute, TFLOP/s (or TOPS for NPUs).",
    "HardwareOverrides.t_fixed_ms": "Fixed cost per step (launch/runtime overhead), ms.",
    "HardwareOverrides.eta_bw": "Achieved fraction of memory bandwidth, (0, 1].",
    "HardwareOverrides.eta_f": "Achieved fraction of peak compute, (0, 1].",
    # network
    "NetworkConfig.capacity": "Capacity model: ideal, constant, random (lognormal) or trace.",
    "NetworkConfig.uplink_mbps": "Uplink capacity, Mbit/s (mean for random, rescale for trace).",
    "NetworkConfig.downlink_mbps": "Downlink capacity, Mbit/s (mean for random, rescale for trace).",
    "NetworkConfig.capacity_cv": "random: coefficient of variation of the lognormal capacity.",
    "NetworkConfig.capacity_interval_ms": "random: capacity is redrawn every this many ms.",
    "NetworkConfig.uplink_trace": "trace: uplink capacity trace file (relative to the scenario file's folder).",
    "NetworkConfig.downlink_trace": "trace: downlink capacity trace file (relative to the scenario file's folder).",
    "NetworkConfig.trace_format": "trace: mahimahi (replayed as mm-link does), pensieve or canonical.",
    "NetworkConfig.align_traces": "trace: each phone's downlink enters its trace at the uplink's offset (both from one recording).",
    "NetworkConfig.rtt_ms": "Base round-trip time phone <-> cloud, ms (radio + distance).",
    "NetworkConfig.backhaul_rtt_ms": "Extra round-trip time to a farther server, ms.",
    "NetworkConfig.jitter_ms": "Mean extra one-way delay per message, ms (no overtaking).",
    "NetworkConfig.jitter_dist": "Distribution of the jitter: exponential, uniform, halfnormal.",
    "NetworkConfig.loss_rate": "Probability that one MTU packet is lost, [0, 1).",
    "NetworkConfig.rto_ms": "Time a lost packet costs before its resend, ms.",
    "NetworkConfig.mtu_bytes": "Packet size on the wire, bytes.",
    "NetworkConfig.packet_header_bytes": "Header bytes per packet (IP + TCP: 40).",
    "NetworkConfig.message_header_bytes": "Header bytes per application message.",
    "NetworkConfig.radio": "The phone's radio technology for energy (lte, nr, wifi, umts, none; ciarsim/data/radio.json); auto: none on an ideal network, else lte.",
    # policies
    "PolicyBase.name": "Policy: base, device_only, sd, lantern, code_split, gated, ciar, oracle.",
    "PolicyBase.label": "Name shown in results; null: the policy name (gated: gated-<signal>).",
    "PolicyBase.greedy": "Take the most likely token instead of sampling.",
    "PolicyBase.temperature": "Sampling temperature.",
    "PolicyBase.top_k": "Sample from the k most likely tokens; 0: all.",
    "PolicyBase.cfg_scale": "Classifier-free guidance scale; 1: no guidance.",
    "SDPolicy.gamma": "Tokens drafted per verification round.",
    "SDPolicy.upload_full_q": "Upload the draft's full distribution (exact residual resampling).",
    "LanternPolicy.gamma": "Tokens drafted per verification round.",
    "LanternPolicy.k": "Latent neighbours of a drafted token considered for acceptance.",
    "LanternPolicy.delta": "Probability mass of neighbours that may be accepted instead (0.1; fast: 0.4).",
    "CodeSplitPolicy.cloud_fraction": "Fraction of each image's tokens generated by the cloud first.",
    "GatedPolicy.signal": "Uncertainty signal: random, entropy, max_prob, topk_set, uhlm, interval.",
    "GatedPolicy.tau": "Threshold: a token with uncertainty >= tau goes to the cloud.",
    "GatedPolicy.rho": "Fraction of tokens the cloud generates first as a prefix.",
    "GatedPolicy.inject_features": "Upload interval features with the unsynced tokens (as CIAR).",
    "GatedPolicy.acceptance": "Cloud rule: speculative, cloud_argmax or always_resample.",
    "GatedPolicy.k": "topk_set: size of the discrete solution set.",
    "GatedPolicy.samples": "uhlm: temperature samples per token.",
    "CiarPipelinedPolicy.window": "Tokens the device drafts past an uncertain token while its verification is in flight.",
    "CiarBatchedPolicy.window": "Tokens per message window; 0 = the rest of the current row of the token grid.",
    "CiarBatchedPolicy.mode": "exact: drafts after a replaced token are redrafted (same tokens as ciar); relaxed: kept (lossy).",
    "CiarBatchedPolicy.lag": "relaxed: positions drafted past a window, uncorrected, while its answer is in flight.",
    "AdaptivePolicy.candidates": "The policies it chooses from, each as in 'policies' (unique labels).",
    "AdaptivePolicy.max_quality_drop": "Largest allowed drop of validation caption consistency below the reference.",
    "AdaptivePolicy.validation_images": "Validation prompts each candidate is decoded on to predict its latency and quality.",
    "PluginPolicy.protocol": "'module:Class' or an entry point of the group ciarsim.policies.",
    "PluginPolicy.params": "Keyword arguments for the protocol's class.",
    "CloudBurstPolicy.k": "Cloud tokens sent down after each verified position (k = 0 is ciar).",
    "CiarPolicy.tau": "Threshold on U: a token with U >= tau goes to the cloud (paper: 0.30).",
    "CiarPolicy.rho": "Fraction of tokens the cloud generates first as anchors (paper: 0.06).",
    "CiarPolicy.acceptance": "Cloud rule: speculative, cloud_argmax or always_resample.",
    "OraclePolicy.rho": "Fraction of tokens the cloud generates first as a prefix.",
}  # fmt: skip
