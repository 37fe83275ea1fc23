"""Pydantic validation errors -> one short line per problem, in a scenario author's words:
``<file>: <field path>: <what is expected>, got <value> (line N)``, raised together as one
``ScenarioError`` (at most ``MAX_PROBLEMS`` lines shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ciarsim.errors import ScenarioError
from ciarsim.scenario.dotted import format_loc, model_at, show, suggest
from ciarsim.scenario.schema import POLICY_NAMES, Scenario
from ciarsim.scenario.yamlfile import Loc, line_of

MAX_PROBLEMS = 20  # lines in one error message; the rest are counted

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
        return f"must be {op} {number_text(ctx[name])}, got {got}"
    if kind == "extra_forbidden":
        model = model_at(loc[:-1], data)
        fields = list(model.model_fields) if model else []
        listed = f" (expected one of: {', '.join(fields)})" if fields else ""
        return f"unknown key{suggest(loc[-1], fields) or listed}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        hint = suggest(err.get("input"), choices) if isinstance(err.get("input"), str) else ""
        return f"must be one of {', '.join(choices)}, got {got}{hint}"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        hint = suggest(tag, POLICY_NAMES)
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


def number_text(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


_NUMBER = re.compile(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?")


def _quote_hint(expected: str, value: Any) -> str:
    if expected == "string" and value is not None and not isinstance(value, (list, dict, str)):
        return f" (quote it: '{value}')"
    if expected in ("int", "float") and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return " (remove the quotes)"
    return ""


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

