"""One entry point for ``ciarsim train WHAT``: check the options against the stage, then run it.

The CLI parses the options into ``TrainOptions``, calls ``train_models`` with a progress callback
and prints what it returns; every option that does not apply to the stage is refused, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ciarsim.errors import CiarsimError, UsageError
from ciarsim.nn import quality
from ciarsim.nn.threads import set_torch_threads
from ciarsim.nn.train.cloud import train_cloud
from ciarsim.nn.train.device import train_device
from ciarsim.nn.train.evaluate import evaluate_models
from ciarsim.nn.train.loop import Progress, data_record, report, resolve_precision
from ciarsim.nn.train.presets import get_preset
from ciarsim.nn.train.tokenizer import finetune_decoder, train_tokenizer

TRAIN_WHAT = ("tokenizer", "tokenizer-decoder", "cloud", "device", "classifier", "all", "evaluate")
ALL_BUDGET_SHARES = (0.7, 0.3)  # ``all --budget-min``: the cloud's and the device's share of the budget

APPLIES = {  # option -> the stages it changes
    "budget_min": ("tokenizer", "tokenizer-decoder", "cloud", "device", "all"),
    "resume": ("cloud", "device"),
    "steps": ("cloud", "device"),
    "batch": ("cloud", "device"),
    "device_layers": ("device", "all"),
    "kl": ("device", "all"),
    "phi_every": ("device",),
    "on_cloud_samples": ("device",),
    "samples_from": ("device",),
    "data": ("tokenizer", "tokenizer-decoder", "cloud", "device", "all", "evaluate"),
}
POSITIVE = ("budget_min", "steps", "batch", "device_layers", "phi_every", "on_cloud_samples")


@dataclass(frozen=True)
class TrainOptions:
    """Options of ``ciarsim train``; None / False: the preset's value or not set."""

    preset: str = "shapes-256"
    device: str = "cpu"  # torch device: cpu, cuda, cuda:1, ...
    budget_min: float | None = None  # wall-clock cap, minutes (all: split ALL_BUDGET_SHARES)
    resume: bool = False
    threads: int = 0  # torch CPU threads; 0: torch's default
    precision: str = "auto"
    steps: int | None = None
    batch: int | None = None
    device_layers: int | None = None
    phi_every: int | None = None
    kl: float | None = None
    on_cloud_samples: int | None = None  # device: train on the cloud's samples of this many training captions
    samples_from: int | None = None  # ... starting at this training caption
    data: Path | None = None  # a folder of images + captions.csv


def check_options(what: str, opts: TrainOptions) -> None:
    """Raise ``UsageError`` for an unknown stage, a bad value, or an option the stage ignores."""
    if what not in TRAIN_WHAT:
        raise UsageError(f"train: unknown model '{what}', expected one of {', '.join(TRAIN_WHAT)}")
    try:
        get_preset(opts.preset)
        resolve_precision(opts.precision, opts.device)
    except CiarsimError as exc:
        raise UsageError(str(exc)) from None
    for name in POSITIVE:
        value = getattr(opts, name)
        if value is not None and value <= 0:
            raise UsageError(f"train: --{name.replace('_', '-')} must be > 0, got {value}")
    if opts.samples_from is not None and (opts.samples_from < 0 or not opts.on_cloud_samples):
        raise UsageError(f"train: --samples-from must be >= 0 and used with --on-cloud-samples, got {opts.samples_from}")
    if opts.threads < 0:
        raise UsageError(f"train: --threads must be >= 0 (0: torch's default), got {opts.threads}")
    for name, stages in APPLIES.items():
        value = getattr(opts, name)
        if value not in (None, False) and what not in stages:
            raise UsageError(f"train {what}: --{name.replace('_', '-')} does not apply "
                             f"(it applies to: {', '.join(stages)})")  # fmt: skip
    if opts.data is not None:
        data_record(get_preset(opts.preset), opts.data)  # reads and checks the folder


def train_all(out_dir, preset: str = "shapes-256", device: str = "cpu", progress: Progress | None = None,
              cloud_budget_s: float | None = None, device_budget_s: float | None = None,
              precision: str = "auto", data_dir=None, device_layers: int | None = None,
              kl: float | None = None) -> dict:
    """Tokenizer, cloud, device, then the card metrics; returns the aggregate card.

    The optional budgets cap the cloud / device training wall-clock time (seconds); ``data_dir``
    trains on a user folder (images + captions.csv) instead of the procedural scenes."""
    train_tokenizer(out_dir, preset, device, progress, data_dir=data_dir)
    train_cloud(out_dir, preset, device, progress, cloud_budget_s, precision=precision, data_dir=data_dir)
    train_device(out_dir, preset, device, progress, device_budget_s, precision=precision, data_dir=data_dir,
                 layers=device_layers, kl=kl)
    return evaluate_models(out_dir, preset, device, progress, data_dir=data_dir)


def train_models(what: str, out_dir: Path, opts: TrainOptions, progress: Progress | None = None) -> dict:
    """Train (or evaluate) ``what`` into ``out_dir``; returns ``{stage: card}`` for what it wrote.

    ``all`` also trains the attribute classifier when training on the procedural scenes."""
    check_options(what, opts)
    if opts.threads:
        set_torch_threads(opts.threads)
    budget = 60 * opts.budget_min if opts.budget_min else None
    common = {"preset": opts.preset, "device": opts.device, "progress": progress, "data_dir": opts.data}
    cards: dict = {}
    if what == "classifier" or (what == "all" and opts.data is None):
        def classifier_progress(step: int, loss: float) -> None:
            report(progress, "classifier", step, quality.DEFAULT_CLASSIFIER_STEPS, {"loss": float(loss)})

        cards["classifier"] = quality.build_default_classifier(
            path=Path(out_dir) / "classifier.safetensors", progress=classifier_progress)
    if what == "tokenizer":
        cards[what] = train_tokenizer(out_dir, time_budget_s=budget, **common)
    elif what == "tokenizer-decoder":
        cards[what] = finetune_decoder(out_dir, time_budget_s=budget, **common)
    elif what == "cloud":
        cards[what] = train_cloud(out_dir, time_budget_s=budget, precision=opts.precision, resume=opts.resume,
                                  steps=opts.steps, batch=opts.batch, **common)  # fmt: skip
    elif what == "device":
        cards[what] = train_device(out_dir, time_budget_s=budget, precision=opts.precision, resume=opts.resume,
                                   steps=opts.steps, batch=opts.batch, layers=opts.device_layers, kl=opts.kl,
                                   phi_every=opts.phi_every, on_cloud_samples=opts.on_cloud_samples,
                                   samples_from=opts.samples_from or 0, **common)  # fmt: skip
    elif what == "evaluate":
        cards[what] = evaluate_models(out_dir, **common)
    elif what == "all":
        cloud_share, device_share = ALL_BUDGET_SHARES
        cards[what] = train_all(out_dir, cloud_budget_s=budget and cloud_share * budget,
                                device_budget_s=budget and device_share * budget, precision=opts.precision,
                                device_layers=opts.device_layers, kl=opts.kl, **common)  # fmt: skip
    return cards
