"""The Python API: what ``ciarsim run`` / ``ciarsim report`` do, as functions for scripts and
notebooks (``docs/python-api.md``).

    import ciarsim
    res = ciarsim.run("scenarios/4g.yaml", overrides=["sweep.network.rtt_ms=[20,80]"], out="runs/rtt")
    res.summary                                  # summary.csv as a DataFrame
    fig = ciarsim.plots.speedup_vs(res, "network.rtt_ms")   # a matplotlib Figure

``run`` checks the scenario like ``ciarsim scenarios validate``, runs it with the runner the CLI
uses (``ciarsim.runner.run.run_scenario``), builds the same report (``ciarsim.report``) and returns
the folder read back by ``load``: the tables are the files' contents, not a second computation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ciarsim.errors import ScenarioError, UsageError
from ciarsim.report.load import Results, load_results

DEFAULT_CACHE = ".cache/ciarsim/traces"


def load(folder: str | Path) -> Results:
    """Read a results folder written by ``ciarsim run`` (or ``run``): ``.results`` (one row per
    image), ``.summary`` (summary.csv), ``.messages`` (timeline segments, or None), ``.points``
    (each point's swept values), ``.samples`` (token-map arrays), ``.scenario_text``; and
    ``.summary_ci``, the report's summary with 95% intervals. Raises CiarsimError naming the path
    when it is not a results folder."""
    return load_results(folder)


def scenario_of(scenario, overrides: Iterable[str] = ()):
    """A validated ``Scenario`` from a path, YAML text's path or a ``Scenario`` (overrides
    applied), with every file and name it refers to checked (one ScenarioError lists all)."""
    from ciarsim.scenario import Scenario, dump_scenario, load_scenario, parse_scenario  # noqa: PLC0415
    from ciarsim.runner import checks as files  # noqa: PLC0415

    overrides = list(overrides)
    if isinstance(scenario, Scenario):
        source = f"<scenario {scenario.name}>"
        sc = parse_scenario(dump_scenario(scenario), source, overrides) if overrides else scenario
    elif isinstance(scenario, (str, Path)):
        source = str(scenario)
        sc = load_scenario(scenario, overrides)
    else:
        raise UsageError(f"scenario: expected a path or a ciarsim.scenario.Scenario, got "
                         f"{type(scenario).__name__}")  # fmt: skip
    problems = (files.name_problems(sc, source) + files.trace_problems(sc, source)
                + files.protocol_problems(sc, source))  # fmt: skip
    if problems:
        raise ScenarioError("\n".join(problems))
    return sc


def run(scenario, overrides: Iterable[str] = (), out: str | Path | None = None, *,
        cache_dir: str | Path = DEFAULT_CACHE, workers: int = 1, force: bool = False,
        report: bool = True, messages: str = "first", progress=None, executor=None) -> Results:  # fmt: skip
    """Run ``scenario`` (a path or a ``Scenario``) with ``overrides`` (``"dotted.path=value"``,
    as ``--set``) into ``out`` (default: the scenario's ``output_dir``, else ``reports/<name>``)
    and return the results folder read back (``load``).

    ``workers``: processes (1: in this process; 0: one per CPU core). ``report``: also write
    report.md and the figures, as ``ciarsim run`` does. ``progress(done, total, what)``: called as
    tasks finish. Finished parts in ``out`` are reused unless ``force``. Raises ScenarioError /
    UsageError (bad input) or MissingComponentError (models not trained).
    """
    from ciarsim.runner.executors import LocalExecutor, PoolExecutor  # noqa: PLC0415
    from ciarsim.runner.run import run_scenario  # noqa: PLC0415

    if messages not in ("first", "all"):
        raise UsageError(f"messages: expected 'first' or 'all', got '{messages}'")
    if workers < 0:
        raise UsageError(f"workers: expected 0 (one per CPU core) or more, got {workers}")
    sc = scenario_of(scenario, overrides)
    target = Path(out) if out is not None else Path(sc.output_dir or f"reports/{sc.name}")
    if target.exists() and not target.is_dir():
        raise UsageError(f"out: '{target}' is a file; expected a results folder (new or existing)")
    pool = executor or (LocalExecutor() if workers == 1 else PoolExecutor(workers or None))
    run_scenario(sc, target, cache_dir=cache_dir, progress=progress, force=force, executor=pool,
                 messages=messages)  # fmt: skip
    if report:
        from ciarsim.report import build_report  # noqa: PLC0415

        build_report(target)
    return load(target)


__all__ = ["Results", "load", "run", "scenario_of"]
