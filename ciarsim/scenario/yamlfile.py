"""Strict YAML for scenario files: a safe loader that refuses duplicate keys, reads ``1e3`` as a
number (YAML 1.2) and remembers the 1-based line of every key and list item (``line_of``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Loc = tuple[Any, ...]  # a canonical field location: ("policies", 3, "tau"), ("network", "rtt_ms")

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


def parse_yaml(text: str) -> Any:
    """Parse one YAML document; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def yaml_problem(exc: yaml.YAMLError) -> str:
    """``line L, column C: problem`` for a YAML syntax or construction error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "'\\t'" in problem:
        problem += " (indent YAML with spaces, not tabs)"
    elif "expected <block end>" in problem:
        problem += " (check the indentation)"
    return f"{where}{problem}"


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
