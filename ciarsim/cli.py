"""The ``ciarsim`` command line. Thin: parse, call one plain function, print.

Every ``CiarsimError`` becomes one message on stderr and its exit code, never a traceback.
typer and rich are imported here and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ciarsim.errors import CiarsimError, UsageError

app = typer.Typer(
    name="ciarsim",
    help="Simulate cloud-edge collaborative autoregressive image generation (CIAR and baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="Check and describe scenario files.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")

out = Console()
err = Console(stderr=True)


def _friendly(fn: Callable) -> Callable:
    """Turn CiarsimError into a one-screen message + its exit code; Ctrl-C into one line and
    exit 130. The exit codes are listed in ``EXIT_CODES``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CiarsimError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted: finished results were kept; re-run to complete the rest",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


EXIT_CODES = {  # documented in README.md (Exit codes)
    0: "success",
    1: "a results folder or model file cannot be read, or another error ciarsim raises on purpose",
    2: "bad input: a scenario, an override, a trace file, a command-line option or the output folder",
    3: "a checkpoint is corrupted or does not match its config",
    4: "a part the run needs is missing (trained models, an optional package); the message says how to get it",
    130: "interrupted (Ctrl-C); finished results were kept",
}


def _writable_folder(path: Path, option: str) -> None:
    """Create ``path`` and check a file can be written in it; else one ``UsageError`` line."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{option}: cannot create the folder '{path}': '{blocker}' is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"{option}: cannot write to the folder '{path}': "
                         f"{exc.strerror or exc}") from None  # fmt: skip


def _load(path: Path, overrides: list[str], checkpoints: bool = False):
    """A scenario and what it refers to, checked (``runner.checks.load_checked``)."""
    from ciarsim.runner.checks import load_checked  # noqa: PLC0415

    return load_checked(path, overrides, checkpoints)


@app.command()
@_friendly
def run(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: the scenario's output_dir, else reports/<name>)."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: dotted.path=value (repeatable)."),
    cache_dir: Path = typer.Option(Path(".cache/ciarsim/traces"), help="Decode-trace cache folder."),
    force: bool = typer.Option(False, "--force", help="Recompute results that already exist."),
    report: bool = typer.Option(True, "--report/--no-report", help="Build the report (figures, tables) at the end."),
    executor: str = typer.Option("local", help="local (process pool) or ray."),
    workers: int = typer.Option(0, help="Local worker processes (0: one per CPU core)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (default: start a local Ray)."),
    messages: str = typer.Option("first", help="Timeline rows (messages.parquet) for the 'first' point or 'all' points."),
    trace_events: Optional[Path] = typer.Option(None, "--trace-events", help="Also export the first point's timeline as Chrome/Perfetto trace JSON."),
) -> None:
    """Run every policy x sweep point of SCENARIO and write results, summary and report."""
    from ciarsim.runner.run import run_scenario  # noqa: PLC0415

    if messages not in ("first", "all"):
        raise UsageError(f"--messages: expected 'first' or 'all', got '{messages}'")
    _check_executor(executor, workers)
    sc = _load(scenario, set_)
    target = out_dir or Path(sc.output_dir or f"reports/{sc.name}")
    _writable_folder(target, "--out")
    _writable_folder(cache_dir, "--cache-dir")
    pool = _executor(executor, workers, ray_address)
    with _progress("decoding + simulating") as progress:
        result = run_scenario(sc, target, cache_dir=cache_dir, progress=progress, force=force,
                              executor=pool, messages=messages)
    _print_summary(result.summary)
    out.print(
        f"wrote {target}/results.parquet ({len(result.images)} image rows), summary.csv, "
        f"summary.md, messages.parquet; {result.parts_computed} parts computed, "
        f"{result.parts_reused} reused"
    )
    if report:
        from ciarsim.report import build_report  # noqa: PLC0415

        with _warnings_as_lines():
            out.print(f"report: {build_report(target)}")
    if trace_events is not None:
        from ciarsim.report import export_trace_events  # noqa: PLC0415

        out.print(f"trace events: {export_trace_events(target, trace_events)}")


@app.command()
@_friendly
def capacity(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    slo: str = typer.Option("p95<=2000ms", help="Latency SLO: pNN<=LIMITms or pNN<=LIMITs."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: reports/capacity-<name>)."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: dotted.path=value (repeatable)."),
    cache_dir: Path = typer.Option(Path(".cache/ciarsim/traces"), help="Decode-trace cache folder."),
    load: List[str] = typer.Option(["poisson", "closed_loop"], help="Load kinds to search: poisson (rate) and/or closed_loop (devices, the scenario's think time)."),
    images: int = typer.Option(1000, help="Images per probe (warm-up and cool-down excluded)."),
    workers: int = typer.Option(1, help="Worker processes (one search per policy and load kind each)."),
) -> None:
    """Per policy, the highest Poisson rate and the most closed-loop devices whose latency meets
    the SLO; writes capacity.csv, capacity_probes.csv and the capacity figure."""
    from ciarsim.report.capacity import write_capacity_figure  # noqa: PLC0415
    from ciarsim.runner.slo import capacity_for_scenario, parse_slo  # noqa: PLC0415

    target, sc = parse_slo(slo), _load(scenario, set_)
    folder = out_dir or Path(f"reports/capacity-{sc.name}")
    table = capacity_for_scenario(sc, target, folder, cache_dir=cache_dir, kinds=tuple(load),
                                  images=images, workers=workers,
                                  progress=lambda d, t, w: err.print(f"[{d}/{t}] {w}"))  # fmt: skip
    write_capacity_figure(folder, target.limit_ms, str(target))
    out.print(table[["point", "policy", "load", "capacity", "unit", "latency_at_capacity_ms",
                     "ci_low_ms", "ci_high_ms", "bounded"]].to_string(index=False))  # fmt: skip
    out.print(f"wrote {folder}/capacity.csv, capacity_probes.csv, capacity.png")


@app.command("report")
@_friendly
def report_cmd(
    results_dir: Path = typer.Argument(..., help="A folder written by `ciarsim run`."),
    trace_events: Optional[Path] = typer.Option(None, "--trace-events", help="Also write a Chrome/Perfetto trace JSON."),
    point: Optional[str] = typer.Option(None, help="Point key or index for --trace-events (default: the first)."),
    policy: Optional[str] = typer.Option(None, help="Policy label for --trace-events (default: all)."),
) -> None:
    """Build report.md / report.html / tables.tex and figures for a results folder."""
    from ciarsim.report import build_report, export_trace_events  # noqa: PLC0415

    with _warnings_as_lines():
        out.print(f"report: {build_report(results_dir)}")
    if trace_events is not None:
        pt = int(point) if point is not None and point.isdigit() else point
        out.print(f"trace events: {export_trace_events(results_dir, trace_events, pt, policy)}")


@app.command("compare")
@_friendly
def compare_cmd(
    dir1: Path = typer.Argument(..., help="First results folder (A, solid lines)."),
    dir2: Path = typer.Argument(..., help="Second results folder (B, dashed lines)."),
    out_dir: Path = typer.Option(Path("reports/compare"), "--out", help="Output folder."),
) -> None:
    """Overlay two result sets: figures and a table of differences."""
    from ciarsim.report import compare  # noqa: PLC0415

    _writable_folder(out_dir, "--out")
    with _warnings_as_lines():
        out.print(f"comparison: {compare(dir1, dir2, out_dir)}")


PROGRESS_EVERY_S = 10.0  # plain progress lines (stderr not a terminal): at most one per this


@contextlib.contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int, str], None]]:
    """A ``progress(done, total, what)`` callback: a live bar on a terminal, else plain lines."""
    if err.is_terminal:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=err, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(what, total=None)
            yield lambda done, total, last: bar.update(task, completed=done, total=total,
                                                       description=last)  # fmt: skip
        return
    yield _ProgressLines(what, PROGRESS_EVERY_S)


class _ProgressLines:
    """Progress for logs and pipes: one line on the first tick, then at most one per
    ``every_s`` seconds, and one on the last: what, how many done, elapsed, ETA."""

    def __init__(self, what: str, every_s: float) -> None:
        self.what, self.every_s = what, every_s
        self.start, self.last = time.monotonic(), None

    def __call__(self, done: int, total: int, last: str) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.every_s and done < total:
            return
        self.last, elapsed = now, now - self.start
        eta = elapsed / done * (total - done) if done else float("nan")
        err.print(f"{self.what}: {done}/{total} done ({100 * done // max(total, 1)}%), "
                  f"{_clock(elapsed)} elapsed, ETA {_clock(eta)} (last: {last})",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip


def _clock(seconds: float) -> str:
    """``1:05:09`` / ``5:09``; ``?`` when unknown."""
    if seconds != seconds:
        return "?"
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Library warnings (matplotlib, pandas) raised inside: one ``warning:`` line each on stderr,
    once per message, instead of Python's file:line report with a source line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            firsts = (str(w.message).splitlines()[0] for w in caught if str(w.message).strip())
            for text in dict.fromkeys(firsts):
                err.print(f"warning: {text}", highlight=False, markup=False, soft_wrap=True)


def _check_executor(kind: str, workers: int) -> None:
    if kind not in ("local", "ray"):
        raise UsageError(f"--executor: expected 'local' or 'ray', got '{kind}'")
    if workers < 0:
        raise UsageError(f"--workers: expected 0 (one per CPU core) or more, got {workers}")


def _executor(kind: str, workers: int, ray_address: Optional[str]):
    from ciarsim.runner.executors import PoolExecutor, RayExecutor  # noqa: PLC0415

    _check_executor(kind, workers)
    return PoolExecutor(workers or None) if kind == "local" else RayExecutor(ray_address)


SUMMARY_VIEW = [  # column, header, format
    ("policy", "policy", "{}"),
    ("latency_mean_ms", "mean ms", "{:,.0f}"),
    ("latency_p50_ms", "p50 ms", "{:,.0f}"),
    ("latency_p95_ms", "p95 ms", "{:,.0f}"),
    ("speedup_vs_base", "speed-up", "{:.2f}x"),
    ("cloud_calls_mean", "round trips", "{:.1f}"),
    ("cloud_calls_pct", "cloud % of base", "{:.1f}"),
    ("caption_consistency", "consistency", "{:.3f}"),
    ("fd", "FD", "{:.0f}"),
]


def _print_summary(summary) -> None:
    """One table per sweep point (the first few), in the user's policy order."""
    points = list(dict.fromkeys(summary["point"]))
    widest = max((len(str(p)) for p in summary["policy"]), default=6)
    for i, point in enumerate(points[:4]):
        rows = summary[summary["point"] == point]
        params = summary.columns[1 : summary.columns.get_loc("policy")]  # swept values
        swept = ", ".join(f"{c}={rows[c].iloc[0]}" for c in params)
        title = "summary" if len(points) == 1 else f"point {i + 1}/{len(points)} ({swept or point})"
        table = Table(title=title)
        for col, header, _ in SUMMARY_VIEW:
            if col == "policy":  # never truncated: distinct labels must stay distinct
                table.add_column(header, no_wrap=True, min_width=widest)
            else:  # a narrow terminal folds a number onto two lines, never cuts it
                table.add_column(header, justify="right", overflow="fold")
        for _, row in rows.iterrows():
            table.add_row(*[_cell(row.get(col), fmt) for col, _, fmt in SUMMARY_VIEW])
        _print_wide(table)
    if len(points) > 4:
        out.print(f"... {len(points) - 4} more points in summary.csv / summary.md")


def _print_wide(table: Table) -> None:
    """On a terminal, at its width; in a log or pipe, as wide as the table needs (to 160)."""
    if out.is_terminal:
        out.print(table)
        return
    width, out.width = out.width, max(out.width, 160)
    try:
        out.print(table)
    finally:
        out.width = width


def _cell(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return fmt.format(v)


@scenarios_app.command("validate")
@_friendly
def scenarios_validate(
    files: List[Path] = typer.Argument(..., help="Scenario YAML files."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: dotted.path=value."),
) -> None:
    """Check scenario files and everything `run` checks before decoding, in every sweep point:
    model, hardware and runtime names, trace files, the checkpoint folder and its trained models,
    external protocols. One line per file or problem; exit 2 if any file is invalid, after
    checking them all."""
    from ciarsim.runner.checks import validate_file  # noqa: PLC0415

    failed = 0
    for f in files:
        try:
            sc, points = validate_file(f, set_)
        except CiarsimError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            failed += 1
            continue
        out.print(
            f"{f}: ok ({len(sc.policies)} policies x {points} points x "
            f"{sc.replications} replications)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(2)


@scenarios_app.command("schema")
@_friendly
def scenarios_schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion and validation)."""
    from ciarsim.scenario.loader import scenario_json_schema  # noqa: PLC0415

    sys.stdout.write(json.dumps(scenario_json_schema(), indent=2) + "\n")


@app.command()
@_friendly
def train(
    what: str = typer.Argument(..., help="tokenizer | tokenizer-decoder | cloud | device | classifier | all | evaluate"),
    out_dir: Path = typer.Option(Path("models/shapes-256"), "--out", help="Checkpoint folder."),
    preset: str = typer.Option("shapes-256", help="Training preset (shapes-256, tiny, ...)."),
    device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:1, ..."),
    budget_min: Optional[float] = typer.Option(None, help="Wall-clock cap in minutes for the stage's training "
                                               "(all: 70% cloud, 30% device)."),
    resume: bool = typer.Option(False, help="cloud/device: continue from the saved checkpoint."),
    threads: int = typer.Option(0, help="torch CPU threads (0: torch's default; 1 avoids contention)."),
    precision: str = typer.Option("auto", help="GPT passes: auto (bf16 where the hardware has it), bf16, fp32."),
    steps: Optional[int] = typer.Option(None, help="cloud/device: override the preset's step count."),
    batch: Optional[int] = typer.Option(None, help="cloud/device: override the preset's batch size."),
    device_layers: Optional[int] = typer.Option(None, help="device/all: trunk depth, the cloud's first N blocks "
                                                "(default 1, the paper's design)."),
    phi_every: Optional[int] = typer.Option(None, help="device: train phi every N steps (default: the preset's, 2)."),
    kl: Optional[float] = typer.Option(None, help="device/all: weight of each guidance-consistent KL distillation "
                                       "term (guided, caption, null; default: the preset's, 1 for shapes-256)."),
    on_cloud_samples: Optional[int] = typer.Option(None, help="device: teacher-force on the cloud's own samples of "
                                                   "N training captions instead of the scenes' codes."),
    samples_from: Optional[int] = typer.Option(None, help="device: first training caption for --on-cloud-samples "
                                               "(default 0; fresh captions for a further round)."),
    data: Optional[Path] = typer.Option(None, help="Train on a folder of images + captions.csv (file,caption) "
                                        "instead of the procedural scenes; its last 10% is held out."),
) -> None:
    """Train the decision models (safetensors + JSON cards) and measure the card's targets."""
    from ciarsim.nn.train import TrainOptions, check_options, train_models  # noqa: PLC0415

    opts = TrainOptions(preset=preset, device=device, budget_min=budget_min, resume=resume, threads=threads,
                        precision=precision, steps=steps, batch=batch, device_layers=device_layers,
                        phi_every=phi_every, kl=kl, on_cloud_samples=on_cloud_samples,
                        samples_from=samples_from, data=data)  # fmt: skip
    check_options(what, opts)  # bad options fail before any training starts
    _writable_folder(out_dir, "--out")
    with _train_progress() as progress:
        cards = train_models(what, out_dir, opts, progress)
    if "classifier" in cards:
        out.print(f"classifier: held-out accuracy {cards['classifier'].get('heldout_accuracy', cards['classifier'])}")
    out.print(f"wrote checkpoints to {out_dir} (see {out_dir}/CARD.md)")


@contextlib.contextmanager
def _train_progress() -> Iterator[Callable[[str, int, int, dict], None]]:
    """A ``progress(stage, step, total, metrics)`` callback for training: one live bar per stage
    on a terminal, else a plain line per report (for logs of background runs)."""

    def info(metrics: dict) -> str:
        return " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))

    if not err.is_terminal:
        yield lambda stage, step, total, metrics: err.print(
            f"{stage}: step {step}/{total} {info(metrics)}", highlight=False, markup=False, soft_wrap=True)
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"), console=err,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(stage: str, step: int, total: int, metrics: dict) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, info="")
            bar.update(tasks[stage], completed=step, total=total, info=info(metrics))

        yield progress


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise UsageError(f"profile: --{name} must be a comma-separated list of positive integers, got '{text}'")
    return values


@app.command()
@_friendly
def profile(
    model: str = typer.Option("shapes-256", help="GPT preset to time (shapes-256, tiny)."),
    batch: str = typer.Option("1,8,64", help="Batch sizes, comma-separated."),
    context: str = typer.Option("16,128", help="Tokens already in the KV cache."),
    new_tokens: str = typer.Option("1,4,16", help="Tokens processed per step."),
    device: str = typer.Option("cpu", help="torch device."),
    repeats: int = typer.Option(5, help="Timed runs per point (median reported)."),
    out_csv: Path = typer.Option(Path("profile.csv"), "--out", help="CSV to write."),
) -> None:
    """Measure real forward-step latency on this host; CSV in the shipped profile format."""
    from ciarsim.nn.profile import profile_to_csv  # noqa: PLC0415

    _writable_folder(out_csv.parent, "--out")
    df = profile_to_csv(out_csv, model, _ints(batch, "batch"), _ints(context, "context"),
                        _ints(new_tokens, "new-tokens"), device=device, repeats=repeats)  # fmt: skip
    out.print(df.to_string(index=False))
    out.print(f"wrote {out_csv}")


@app.command()
@_friendly
def thresholds(
    send_rates: str = typer.Option("0.1,0.2,0.3,0.45,0.6", help="Shares of device tokens to send."),
    signals: str = typer.Option("random,entropy,max_prob,topk_set,uhlm,interval", help="Gate signals."),
    images: int = typer.Option(32, help="Validation prompts to calibrate on (never the test prompts runs report)."),
    rho: float = typer.Option(0.06, help="Cloud prefix share (as in the policies)."),
    checkpoints: Path = typer.Option(Path("models/shapes-256"), help="Decision models."),
    seed: int = typer.Option(0, help="Decision seed."),
) -> None:
    """Print a scenario `zip:` group with each signal's tau at equal cloud-call budgets."""
    from ciarsim.policies.calibrate import threshold_zip  # noqa: PLC0415
    from ciarsim.scenario.loader import dump_yaml  # noqa: PLC0415

    rates = [float(x) for x in send_rates.split(",")]
    names = [x.strip() for x in signals.split(",") if x.strip()]
    group = threshold_zip(names, rates, images, str(checkpoints), seed, rho)
    out.print(f"# send rates {rates} on {images} validation prompts, seed {seed}", highlight=False)
    sys.stdout.write(dump_yaml({"zip": [group]}))


@app.command()
@_friendly
def emulate(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    out_dir: Path = typer.Option(Path("reports/emulate"), "--out", help="Output folder."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: dotted.path=value (repeatable)."),
    images: int = typer.Option(4, min=1, help="Images per (point, policy): the first N of the workload."),
    cache_dir: Path = typer.Option(Path(".cache/ciarsim/traces"), help="Decode-trace cache folder."),
    congestion: str = typer.Option("cubic", help="TCP congestion control of both ends (Linux "
                                   "TCP_CONGESTION); the simulator models CUBIC."),
) -> None:
    """Replay SCENARIO over real kernel TCP through a shaped packet relay (two network
    namespaces; needs root or CAP_NET_ADMIN) and compare per-image latency with the simulator."""
    from ciarsim.emulate import emulate_scenario  # noqa: PLC0415

    sc = _load(scenario, set_)
    _writable_folder(out_dir, "--out")
    result = emulate_scenario(sc, out_dir, images=images, cache_dir=cache_dir, congestion=congestion,
                              progress=lambda d, n, what: err.print(f"emulated {d}/{n}: {what}"))  # fmt: skip
    cols = ["policy", "sim_median_ms", "emu_median_ms", "rel_error_median", "rel_error_p95"]
    out.print(result.points[["point", *cols]].to_string(index=False, float_format="%.3f"))
    out.print(f"wrote {out_dir}/emulation.csv ({len(result.images)} image rows), points.csv, "
              f"losses.csv ({len(result.losses)} dropped segments), streams.csv, packets.csv")


def main() -> None:  # pragma: no cover - the entry point; tests/test_cli_interrupt.py runs it
    """The ``ciarsim`` command. After an interrupt the process ends at once with exit 130: no
    wait on a process-pool thread at interpreter exit, and no death by SIGINT instead of 130
    (CPython < 3.12 does that when the interrupt landed in code run by exec(), even once caught)."""
    try:
        app()
    except SystemExit as exc:
        if exc.code != 130:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
