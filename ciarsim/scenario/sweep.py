"""Sweep expansion: a scenario's ``sweep:`` grid -> resolved, validated, keyed points.

``sweep:`` maps dotted field paths to lists of values. ``zip:`` is a list of groups, each mapping
paths to equal-length lists that move together (value i of every path in the group at once). The
points are the product of the sweep keys and the zip groups, in a fixed order: the first sweep key
varies slowest (keys in file order, then zip groups in order; values in list order), like nested
loops written top to bottom. Each point carries the fully resolved scenario (values applied, ``sweep``
emptied) and a key: the first 16 hex digits of the SHA-256 of the canonical JSON of that scenario
without the fields that do not change a result (``KEY_EXCLUDES``). The same point gets the same key
in every run and on every machine, so finished results can be found again and re-runs do only what
is missing.

Replications: replication ``r`` of a scenario with ``seed`` s draws its timing randomness from
``replication_seed(s, r)``, a 63-bit integer taken from SHA-256 of ``"ciarsim/replication/v1/s/r"``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ciarsim.errors import ScenarioError
from ciarsim.scenario.dotted import PathError, assign, check_leaf, format_loc, locate, show
from ciarsim.scenario.messages import MAX_PROBLEMS, problems, scenario_error
from ciarsim.scenario.yamlfile import Loc
from ciarsim.scenario.schema import Scenario

MAX_POINTS = 100_000
KEY_VERSION = 1  # bump when the meaning of a resolved scenario changes for the same fields
KEY_EXCLUDES = frozenset({"name", "description", "output_dir", "replications"})
"""Left out of a point's key: presentation (name, description, output_dir) and ``replications``,
which says how many runs of the point to make, not what one run is (runs are keyed by point key
and replication index, so raising ``replications`` reuses the finished ones)."""
KEY_SILENT_DEFAULTS = {"tcp_recovery": "rto", "tcp_window": "slow-start", "tcp_rto_rtt": "path"}
"""Network fields added after keys were pinned, left out of a key while at their default (which
is what a scenario without them always meant), so that existing results keep their keys."""


@dataclass(frozen=True)
class Point:
    """One sweep point: ``params`` (swept path -> value), the resolved ``scenario``, its ``key``."""

    index: int
    params: dict[str, Any]
    scenario: Scenario
    key: str

    @property
    def label(self) -> str:
        """``network.rtt_ms=20, workload.images=8``; ``base`` for a scenario without a sweep."""
        return ", ".join(f"{k}={_plain(v)}" for k, v in self.params.items()) or "base"


def expand(
    scenario: Scenario, *, source: str | None = None, sweep_lines: Mapping[str, int] | None = None
) -> list[Point]:
    """The sweep points of ``scenario`` (one point if it has no sweep), validated and keyed.

    ``source`` (a file name) prefixes error messages and ``sweep_lines`` (sweep key -> line in that
    file) locates them. Raises ``ScenarioError`` naming ``sweep.<path>[i]`` for a bad value, or
    the point for a bad combination of values.
    """
    prefix = f"{source}: " if source else ""
    sweep_lines = sweep_lines or {}
    base = scenario.model_dump(mode="json")
    base["sweep"], base["zip"] = {}, []
    axes = [[path] for path in scenario.sweep] + [list(group) for group in scenario.zip]
    values_of = dict(scenario.sweep)
    for group in scenario.zip:
        values_of.update(group)
    paths = [path for axis in axes for path in axis]
    locs = [_locate(base, path, prefix, sweep_lines.get(path)) for path in paths]
    grid = [values_of[path] for path in paths]
    _check_size([axis[0] for axis in axes], [values_of[axis[0]] for axis in axes], prefix)
    points: list[Point] = []
    errors: list[str] = []
    seen: dict[str, Point] = {}
    sizes = [len(values_of[axis[0]]) for axis in axes]
    for index, axis_picks in enumerate(itertools.product(*(range(n) for n in sizes))):
        picks = [i for axis, i in zip(axes, axis_picks) for _ in axis]
        params = {path: values[i] for path, values, i in zip(paths, grid, picks)}
        data = copy.deepcopy(base)
        for loc, value in zip(locs, params.values()):
            assign(data, loc, value)
        try:
            resolved = Scenario.model_validate(data, strict=True)
        except ValidationError as exc:
            new = _blame(exc, data, index, params, paths, locs, picks, prefix, sweep_lines)
            errors.extend(line for line in new if line not in errors)
            if len(errors) > MAX_PROBLEMS:
                break
            continue
        point = Point(index, params, resolved, scenario_key(resolved))
        if point.key in seen:
            errors.append(
                f"{prefix}sweep: point {index} ({point.label}) is the same run as point "
                f"{seen[point.key].index} ({seen[point.key].label}); remove the repeated value"
            )
        seen[point.key] = point
        points.append(point)
    if errors:
        raise scenario_error(errors, source or "sweep")
    return points


def scenario_key(scenario: Scenario) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``scenario`` minus ``KEY_EXCLUDES``."""
    exclude = set(KEY_EXCLUDES) | (set() if scenario.population else {"population"})
    data = scenario.model_dump(mode="json", exclude=exclude)  # no population: keys as before
    _drop_silent_defaults(data)
    blob = json.dumps(
        {"key_version": KEY_VERSION, "scenario": data},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,  # tau: .inf -> Infinity
    )  # fmt: skip
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _drop_silent_defaults(node) -> None:
    """Remove ``KEY_SILENT_DEFAULTS`` at their defaults from every network section in ``node``
    (the scenario's and its population groups')."""
    if isinstance(node, dict):
        if "tcp" in node:
            for k, v in KEY_SILENT_DEFAULTS.items():
                if node.get(k) == v:
                    del node[k]
        for v in node.values():
            _drop_silent_defaults(v)
    elif isinstance(node, list):
        for v in node:
            _drop_silent_defaults(v)


def replication_seed(seed: int, replication: int) -> int:
    """Seed (0 <= s < 2**63) of replication ``replication`` of a scenario with root ``seed``.

    The first 8 bytes of SHA-256(``"ciarsim/replication/v1/<seed>/<replication>"``), shifted right
    one bit: stable across runs, machines and Python versions; distinct per (seed, replication).
    """
    return hashed_seed("ciarsim/replication/v1", seed, replication)


def hashed_seed(namespace: str, seed: int, *parts: object) -> int:
    """Seed (0 <= s < 2**63): the first 8 bytes of SHA-256(``"<namespace>/<seed>/<part>/..."``),
    shifted right one bit; ``seed`` and every integer part must be >= 0."""
    ints = [seed, *(p for p in parts if isinstance(p, int))]
    if any(i < 0 for i in ints):
        raise ValueError(f"seed and replication must be >= 0, got {', '.join(map(str, ints))}")
    text = "/".join([namespace, str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def _locate(base: dict, path: str, prefix: str, line: int | None) -> Loc:
    try:
        loc = locate(base, path)
        check_leaf(loc, base)
    except PathError as exc:
        raise ScenarioError(f"{prefix}sweep.{path}: {exc}{_at(line)}") from None
    return loc


def _at(line: int | None) -> str:
    return f" (line {line})" if line else ""


def _check_size(paths: list[str], grid: list[list], prefix: str) -> None:
    for path, values in zip(paths, grid):
        if not values:
            raise ScenarioError(f"{prefix}sweep.{path}: lists no values; give at least one")
    total = math.prod(len(v) for v in grid)
    if total > MAX_POINTS:
        sizes = " x ".join(str(len(v)) for v in grid)
        raise ScenarioError(f"{prefix}sweep: {sizes} = {total} points, more than {MAX_POINTS}")


def _blame(exc, data, index, params, paths, locs, picks, prefix, sweep_lines) -> list[str]:
    """One line per problem of a failed point: on the swept value if it is the culprit."""
    lines = []
    for loc, text in problems(exc, data):
        if loc in locs:
            j = locs.index(loc)
            at = _at(sweep_lines.get(paths[j]))
            lines.append(f"{prefix}sweep.{paths[j]}[{picks[j]}]: {text}{at}")
        else:
            label = ", ".join(f"{k}={_plain(v)}" for k, v in params.items())
            where = f"{format_loc(loc, data)}: " if loc else ""
            lines.append(f"{prefix}sweep point {index} ({label}): {where}{text}")
    return lines


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else show(value)
