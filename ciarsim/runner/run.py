"""Run a scenario: every sweep point x policy x replication, decoded once, replayed, stored.

Order of work (deterministic): points in sweep order, policies in file order, replications
ascending. For each (point, policy) the decode trace comes from the trace cache (decoded on a miss);
each replication replays it in a fresh SimPy world seeded by ``replication_seed(seed, r)``.

Results of each (point, policy, replication) are written as one part file as soon as they exist,
so an interrupted run keeps its finished work and a re-run computes only the missing parts. A
part's name carries a hash of the point key, label, replication and the content of everything
that determined it (``ciarsim.runner.provenance``: the whole package's code and data files, the
model set's files through the trace key, the capacity-trace files), so changing any of them
recomputes it; ``<part>.meta.json`` records those digests, the code version and whether the git
tree was dirty. At the end the parts are gathered into ``results.parquet`` / ``results.csv``
(one row per image), ``messages.parquet`` (one row per operation segment), ``summary.csv`` /
``summary.md`` (with the swept values after the point key) and the resolved ``scenario.yaml``. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import feather

from ciarsim.errors import MissingComponentError
from ciarsim.runner import adaptive, provenance, store
from ciarsim.runner.summary import summarize, to_markdown
from ciarsim.runner.trace_cache import TraceCache, decision_code_version, shipped_dir, trace_key
from ciarsim.scenario.schema import ModelsConfig, Scenario, WorkloadConfig
from ciarsim.trace import TraceSet

Decoder = Callable[[object, WorkloadConfig, ModelsConfig, int], TraceSet]


class Progress(Protocol):
    def __call__(self, done: int, total: int, what: str) -> None: ...


@dataclass(frozen=True)
class RunOutputs:
    out_dir: Path
    images: pd.DataFrame
    messages: pd.DataFrame
    summary: pd.DataFrame
    points: pd.DataFrame
    parts_computed: int
    parts_reused: int


def preflight(scenario: Scenario) -> None:
    """Raise one MissingComponentError listing every part the run needs that is not built."""
    from ciarsim.policies import REGISTRY  # noqa: PLC0415  (decision layer loads torch lazily)

    problems = []
    root = Path(scenario.models.checkpoints)
    missing_models = [k for k in ("tokenizer", "cloud", "device") if not (root / f"{k}.json").exists()]
    if missing_models:
        problems.append(
            f"decision models: no trained {', '.join(missing_models)} checkpoint at '{root}' "
            f"(models.checkpoints); build them with `ciarsim train all --out {root}`"
        )
    names = {c.name for p in scenario.policies for c in getattr(p, "candidates", [p])}
    missing = sorted(names - set(REGISTRY))
    if missing:
        problems.append(
            f"policies not implemented yet: {', '.join(missing)} (tracked in the issue "
            "'Decoding policies: CIAR and every baseline'); built: "
            f"{', '.join(sorted(REGISTRY)) or 'none'}"
        )
    if problems:
        raise MissingComponentError(
            "cannot run this scenario yet:\n  - " + "\n  - ".join(problems)
        )


def _default_decoder(policy, workload, models_cfg, seed, models=None) -> TraceSet:  # pragma: no cover - wiring
    from ciarsim.policies import get_decoder  # noqa: PLC0415

    return get_decoder(policy.name)(policy, workload, models_cfg, seed, models=models)


def model_cache():
    """A new, empty decision-model cache (``policies.engine.ModelCache``) for one decode phase."""
    from ciarsim.policies.engine import ModelCache  # noqa: PLC0415  (decision layer loads torch lazily)

    return ModelCache()


@dataclass(frozen=True)
class Job:
    """One (point, policy, replication): replay the policy's traces at the point's network."""

    point: object  # ciarsim.scenario.sweep.Point
    policy: object  # a PolicyConfig
    replication: int
    trace_key: str
    part: Path  # part file stem; IMAGES_PART / MESSAGES_PART / ``.meta.json`` appended
    meta: dict = field(default_factory=dict, compare=False)  # provenance, written with the part
    split: str = "test"  # prompts decoded (validation: an adaptive policy's predictions)
    variants: tuple = ()  # adaptive: its candidates (``adaptive.Variant``)

    @property
    def label(self) -> str:
        return self.policy.display


def plan_jobs(scenario: Scenario, out_dir: Path, dirty: bool | None = None,
              messages: str = "first") -> tuple[list, list[Job]]:  # fmt: skip
    """The sweep points and every job, in the deterministic order of the results. Each job's part
    name and trace key hash the content of its inputs (module doc) and whether the part records
    timeline segments (``messages``); ``dirty`` (the git tree's state) is only recorded."""
    from ciarsim.scenario.sweep import expand  # noqa: PLC0415

    points = expand(scenario)
    code, decision = provenance.code_version(), decision_code_version()
    checkpoints: dict[str, dict[str, str]] = {}
    jobs = []
    for pt in points:
        sc = pt.scenario
        prompts = {"start": sc.workload.prompt_start, "images": sc.workload.images,
                   "token_grid": sc.workload.token_grid}  # fmt: skip
        if sc.models.checkpoints not in checkpoints:
            checkpoints[sc.models.checkpoints] = provenance.checkpoint_digests(sc.models.checkpoints)
        models = checkpoints[sc.models.checkpoints]
        capacity = provenance.capacity_trace_digests(sc.network)
        plain = {p.display: trace_key(p.model_dump(mode="json"), prompts, models, sc.seed, decision)
                 for p in sc.policies if p.name != "adaptive"}  # fmt: skip
        pinned = {g.name: plain[g.policy] for g in sc.population if g.policy}  # groups on another policy
        for policy in sc.policies:
            variants = _variants(policy, sc, prompts, models, decision)
            key = (hashlib.sha256("|".join(v.test_key + v.validation_key for v in variants).encode())
                   .hexdigest()[:24] if variants else plain[policy.display])
            inputs = {"code_version": code, "trace_key": key, "capacity_traces": capacity,
                      "segments": messages == "all" or pt.index == 0,
                      **({"group_traces": pinned} if pinned else {})}  # fmt: skip
            for rep in range(sc.replications):
                label = policy.display
                stem = f"{pt.key}-{_slug(label)}-r{rep}-{_part_id(pt.key, label, rep, inputs)}"
                meta = {"point": pt.key, "policy": label, "replication": rep, **inputs,
                        "checkpoints": models, "dirty_tree": dirty}  # fmt: skip
                jobs.append(Job(pt, policy, rep, key, out_dir / "parts" / stem, meta,
                                variants=variants))  # fmt: skip
    return points, jobs


def _variants(policy, sc, prompts, models, decision) -> tuple:
    """An adaptive policy's candidates with the trace keys of their test and validation decodes."""
    if policy.name != "adaptive":
        return ()
    val = {**prompts, "start": 0, "images": policy.validation_images, "split": "validation"}
    return tuple(adaptive.Variant(
        c, trace_key(c.model_dump(mode="json"), prompts, models, sc.seed, decision),
        trace_key(c.model_dump(mode="json"), val, models, sc.seed, decision),
    ) for c in policy.candidates)  # fmt: skip


def decode_jobs(jobs: list[Job]) -> list[Job]:
    """What the decode phase must produce for ``jobs``: each job's traces, or for an adaptive
    job each candidate's test and validation traces."""
    out = []
    for j in jobs:
        if not j.variants:
            out.append(j)
            continue
        for v in j.variants:
            out.append(replace(j, policy=v.policy, trace_key=v.test_key, variants=()))
            out.append(replace(j, policy=v.policy, trace_key=v.validation_key, variants=(),
                               split="validation"))  # fmt: skip
    return out


def decode_task(job: Job, cache_dir: str, decoder: Decoder | None, models=None) -> str:
    """Decode (once) the trace set a job needs into the cache; returns its key. ``models``: the
    decode phase's ``ModelCache`` (None: a fresh one); models load only on a cache miss."""
    sc = job.point.scenario
    models = models if models is not None else model_cache()
    loaded = lambda: models.get(sc.models.checkpoints)  # noqa: E731
    if job.split == "test":
        run = lambda: (decoder(job.policy, sc.workload, sc.models, sc.seed) if decoder  # noqa: E731
                       else _default_decoder(job.policy, sc.workload, sc.models, sc.seed, loaded()))
    else:  # validation prompts: selection code (an adaptive policy's predictions)
        from ciarsim.policies import decode_split  # noqa: PLC0415

        work = adaptive_validation_workload(job, sc)
        run = lambda: (decoder(job.policy, work, sc.models, sc.seed) if decoder  # noqa: E731
                       else decode_split(job.policy, work, sc.models, sc.seed, job.split, loaded()))
    TraceCache(cache_dir, (shipped_dir(sc.models.checkpoints),)).get_or_decode(job.trace_key, run)
    return job.trace_key


def adaptive_validation_workload(job: Job, sc):
    """The validation workload of the adaptive policy a candidate decode job belongs to."""
    parent = next(p for p in sc.policies if p.name == "adaptive" and job.policy in p.candidates)
    return adaptive.validation_workload(parent, sc.workload)


IMAGES_PART, MESSAGES_PART = ".images.arrow", ".messages.arrow"  # per part: Arrow IPC, read back fast


def _load_traces(path: Path) -> TraceSet:
    """A trace set, loaded once per process while its file is unchanged: a sweep replays each
    set at every point. Read-only to its users."""
    try:
        st = path.stat()
    except OSError:
        return TraceSet.load(path)  # missing: TraceSet.load says so
    return _load_unchanged(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _load_unchanged(path: Path, _mtime_ns: int, _size: int) -> TraceSet:
    return TraceSet.load(path)


def replay_task(job: Job, cache_dir: str, out_dir: str) -> str:
    """Replay a job's traces in a fresh world and write its part files (atomically)."""
    from ciarsim.scenario.sweep import replication_seed  # noqa: PLC0415
    from ciarsim.sim.world import simulate  # noqa: PLC0415

    started = time.perf_counter()
    sc = job.point.scenario
    cache = TraceCache(cache_dir, (shipped_dir(sc.models.checkpoints),))
    extra = {}
    if job.variants:
        load = lambda key: _load_traces(cache.path(key))  # noqa: E731
        pick, extra["adaptive"] = adaptive.choose(job.policy, list(job.variants), load, sc,
                                                  replication_seed(sc.seed, 0))  # fmt: skip
        traces = load(job.variants[pick].test_key)
    else:
        traces = _load_traces(cache.path(job.trace_key))
    groups = {name: _load_traces(cache.path(key)) for name, key in job.meta.get("group_traces", {}).items()}
    rec = simulate(
        traces, workload=sc.workload, models=sc.models, network=sc.network,
        seed=replication_seed(sc.seed, job.replication), replication=job.replication,
        policy=job.label, record_segments=job.meta["segments"], population=sc.population,
        group_traces=groups,
    )  # fmt: skip
    if job.replication == 0 and job.point.index == 0:  # one writer per file: deterministic
        _write_samples(Path(out_dir) / "samples" / f"{_slug(job.label)}.npz", traces)
    msgs = _tag(rec.messages, job.point, job.label, job.replication)
    imgs = _with_quality(_tag(rec.images, job.point, job.label, job.replication), traces, groups)
    store.write_table(msgs, job.part.with_suffix(MESSAGES_PART))
    meta = {**job.meta, **extra, "replay_s": round(time.perf_counter() - started, 3)}
    store.write_text(job.part.with_suffix(".meta.json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    store.write_table(imgs, job.part.with_suffix(IMAGES_PART))  # last: marks the part done
    return job.label


def run_scenario(
    scenario: Scenario,
    out_dir: str | Path,
    *,
    cache_dir: str | Path = ".cache/ciarsim/traces",
    decoder: Decoder | None = None,
    progress: Progress | None = None,
    force: bool = False,
    executor: "Executor | None" = None,
    messages: str = "first",
) -> RunOutputs:
    """Run every point of ``scenario`` and write the results to ``out_dir``.

    Two phases: decode each missing trace set once (deduplicated by trace key), then replay each
    missing part. ``executor`` runs the tasks (default: in this process; see
    ``ciarsim.runner.executors``). ``messages``: per-operation timeline rows for ``"first"`` point
    only (default; enough for timelines, cheap for big sweeps) or ``"all"`` points. ``decoder`` replaces the policy registry (tests pass hand-built
    traces through it). Parts that already exist in ``out_dir/parts`` are reused unless ``force``.
    The results are gathered from the part files in the plan's order, so they are byte-identical
    whichever executor ran them and whether they were computed now or before.
    """
    from ciarsim.runner.executors import LocalExecutor  # noqa: PLC0415

    if decoder is None:
        preflight(scenario)
    out_dir = Path(out_dir)
    executor = executor or LocalExecutor()
    points, jobs = plan_jobs(scenario, out_dir, provenance.dirty_tree(), messages)
    todo = [j for j in jobs if force or not j.part.with_suffix(IMAGES_PART).exists()]
    cache = TraceCache(cache_dir, (shipped_dir(scenario.models.checkpoints),))
    first_of_key: dict[str, Job] = {}
    for j in decode_jobs(todo):
        first_of_key.setdefault(j.trace_key, j)
    to_decode = [j for j in first_of_key.values() if not cache.path(j.trace_key).exists()]
    total = len(to_decode) + len(todo)
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    models = model_cache() if decoder is None and to_decode else None  # this run's, sent to each worker
    executor.map(decode_task, to_decode, (str(cache_dir), decoder, models),
                 lambda j: tick(f"decoded {j.label}"))  # fmt: skip
    executor.map(replay_task, todo, (str(cache_dir), str(out_dir)),
                 lambda j: tick(f"{j.label} @ point {j.point.index + 1}/{len(points)}"))  # fmt: skip
    _write_adaptive(out_dir, jobs)
    images = _read_parts([j.part.with_suffix(IMAGES_PART) for j in jobs])
    messages = _read_parts([j.part.with_suffix(MESSAGES_PART) for j in jobs])
    return _gather(scenario, points, out_dir, images, messages, len(todo), len(jobs) - len(todo))


def _read_parts(paths: list[Path]) -> pd.DataFrame:
    """The part tables at ``paths``, concatenated in order (columns missing from a part: null)."""
    tables = [feather.read_table(p) for p in paths]
    return _normalise(pa.concat_tables(tables, promote_options="default").to_pandas())


def _write_adaptive(out_dir: Path, jobs: list[Job]) -> None:
    """``adaptive.csv``: per adaptive part, the candidate chosen and every prediction."""
    rows = []
    for j in jobs:
        if not j.variants:
            continue
        info = json.loads(j.part.with_suffix(".meta.json").read_text()).get("adaptive", {})
        for label, ms in info.get("predicted_latency_ms", {}).items():
            rows.append({"point": j.point.key, "point_index": j.point.index, "policy": j.label,
                         "replication": j.replication, "candidate": label, "chosen": label == info["choice"],
                         "predicted_latency_ms": ms,
                         "validation_consistency": info["validation_consistency"][label]})  # fmt: skip
    if rows:
        store.write_table(pd.DataFrame(rows), out_dir / "adaptive.csv")


SAMPLES = 8


def _write_samples(path: Path, traces: TraceSet) -> None:
    """The first SAMPLES images of a policy for token maps: ids, sources, U, pixels, captions."""
    n = min(SAMPLES, len(traces))
    arrays = {"images_index": traces.images[:n], "tokens": traces.tokens[:n],
              "source": traces.source[:n], "u": traces.u[:n]}  # fmt: skip
    if traces.preview is not None:
        arrays["pixels"] = traces.preview[:n]
    if "captions" in traces.meta:
        arrays["captions"] = np.array(traces.meta["captions"][:n], dtype=str)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy would append ".npz" to a name
            np.savez_compressed(f, **arrays)

    store.write_atomic(path, write)


def _with_quality(df: pd.DataFrame, traces: TraceSet, groups: dict | None = None) -> pd.DataFrame:
    """Add decision-layer columns to ``df``: cloud forward passes per image and, when the trace
    carries them, image-quality scores (per image, and the set's FD). Rows of a population group
    pinned to another policy (``groups``: name -> its traces) take that policy's values (its FD
    is that policy's set's)."""
    df = _quality_columns(df, traces)
    for name, ts in (groups or {}).items():
        mine = df["group"] == name
        if mine.any():
            own = _quality_columns(df[mine].copy(), ts)
            df.loc[mine, own.columns] = own
    return df


def _quality_columns(df: pd.DataFrame, traces: TraceSet) -> pd.DataFrame:
    passes = dict(zip(traces.images.tolist(), traces.cloud_passes().tolist()))
    df["cloud_passes"] = df["image"].map(passes).astype("int64")
    q = traces.meta.get("quality")
    if not q:
        return df
    per_image = dict(zip(traces.images.tolist(), q["caption_consistency"]))
    df["caption_consistency"] = df["image"].map(per_image).astype(float)
    df["fd"] = float(q["fd"])
    df["fd_n"] = int(q["fd_n_gen"])
    return df


def _part_id(point_key: str, label: str, rep: int, inputs: dict) -> str:
    """8 hex digits over the part's identity and the content digests of its inputs."""
    blob = f"{point_key}|{label}|{rep}|{json.dumps(inputs, sort_keys=True)}"
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _tag(df: pd.DataFrame, pt, label: str, rep: int) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "point", pt.key)
    df.insert(1, "point_index", pt.index)
    if "policy" not in df.columns:
        df.insert(2, "policy", label)
    if "replication" not in df.columns:
        df.insert(3, "replication", rep)
    return df


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """One string dtype for text (and categorical) columns, so fresh and reloaded parts write
    identical bytes."""
    for col in df.columns:
        if df[col].dtype == object or isinstance(df[col].dtype, (pd.StringDtype, pd.CategoricalDtype)):
            df[col] = df[col].astype("str")
    return df


def _gather(scenario, points, out_dir, images, messages, computed, reused) -> RunOutputs:
    from ciarsim.scenario.loader import dump_scenario  # noqa: PLC0415

    params = pd.DataFrame(
        [{"point": p.key, "point_index": p.index, **p.params} for p in points]
    )
    swept = params.drop(columns=["point_index"]) if len(params.columns) > 2 else None
    summary = summarize(images)
    if swept is not None:  # the swept values beside each point key, as in summary_ci.csv
        summary = swept.merge(summary, on="point", how="right")
    store.write_table(images, out_dir / "results.parquet")
    store.write_table(images, out_dir / "results.csv")
    store.write_table(messages, out_dir / "messages.parquet")
    store.write_table(params, out_dir / "points.csv")
    store.write_table(summary, out_dir / "summary.csv")
    store.write_text(out_dir / "summary.md", to_markdown(summary))
    store.write_text(out_dir / "scenario.yaml", dump_scenario(scenario, out_dir))
    return RunOutputs(out_dir, images, messages, summary, params, computed, reused)
