"""Dotted field paths in a raw scenario mapping: ``network.rtt_ms``, ``policies.<label>.tau``,
``sweep.<dotted key>``; following, setting and checking them against the schema (``--set`` and
sweep keys), with the short value rendering (``show``) their messages use.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from ciarsim.scenario.schema import POLICY_NAMES, GatedPolicy, PolicyConfig, Scenario, external_protocol
from ciarsim.scenario.yamlfile import Loc

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
    hint = suggest(token, labels)
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


def kind_of(value: Any) -> str:
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping"))  # fmt: skip
    return next((name for t, name in kinds if isinstance(value, t)), type(value).__name__)


def suggest(word: Any, choices: Iterable[Any]) -> str:
    options = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------------------------------------
# the schema, walked by location


POLICY_CLASSES: dict[str, type[BaseModel]] = {
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
            model = POLICY_CLASSES.get(item.get("name")) if isinstance(item, Mapping) else None
        elif i == 0 and key == "policies":
            model = None  # a list; the next key indexes it
        elif model is not None and isinstance(key, str) and key in model.model_fields:
            model = section_class(model, key)
        else:
            return None
    return model


def section_class(model: type[BaseModel], field: str) -> type[BaseModel] | None:
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
            raise PathError(f"unknown field '{key}'{where}{suggest(key, fields)}")
    model = model_at(loc, data)
    if model is not None or loc == ("policies",):
        fields = ", ".join(model.model_fields) if model else "policies.<label>.<field>"
        raise PathError(f"names a section, not a value; sweep one of its fields: {fields}")


