"""Reports of results folders: figures, summary tables with confidence intervals, comparisons, Perfetto traces.
May import: matplotlib, pandas, numpy, the runner and everything below it (it reads stored tables); never cli.

The only layer of ciarsim that imports matplotlib (imported lazily here, so ``import
ciarsim.report`` stays cheap for the CLI).

Entry points:

- ``build_report(results_dir) -> Path``: write ``report.md``, ``report.html``, ``tables.tex``,
  ``summary_ci.csv`` and ``figures/`` into the results folder; returns ``report.md``'s path.
- ``compare(dir1, dir2, out_dir) -> Path``: overlay two results folders; returns ``compare.md``.
- ``export_trace_events(results_dir, out_file, point=None, policy=None, replication=0) -> Path``:
  a Chrome / Perfetto trace JSON of one point and replication.

Each figure alone, as a matplotlib ``Figure`` from a loaded folder: ``ciarsim.report.plots`` (the
report draws through it too).
"""

from __future__ import annotations

from pathlib import Path


def build_report(results_dir: str | Path) -> Path:
    """Write the report of ``results_dir`` into it; return the path of ``report.md``."""
    from ciarsim.report.page import build_report as build  # noqa: PLC0415

    return build(results_dir)


def compare(dir1: str | Path, dir2: str | Path, out_dir: str | Path) -> Path:
    """Compare two results folders into ``out_dir``; return the path of ``compare.md``."""
    from ciarsim.report.compare import compare as run  # noqa: PLC0415

    return run(dir1, dir2, out_dir)


def export_trace_events(results_dir: str | Path, out_file: str | Path, point: str | int | None = None,
                        policy: str | None = None, replication: int = 0) -> Path:  # fmt: skip
    """Write a Chrome / Perfetto trace (``traceEvents`` JSON) of one point and replication."""
    from ciarsim.report.perfetto import export_trace_events as export  # noqa: PLC0415

    return export(results_dir, out_file, point=point, policy=policy, replication=replication)


__all__ = ["build_report", "compare", "export_trace_events"]
