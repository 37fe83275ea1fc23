"""Training of the decision models (VQ tokenizer, cloud GPT, device model with Inter-DRO) and their card.
May import: torch, numpy, ciarsim.errors and the rest of ciarsim.nn; nothing from sim, policies, runner, report, cli.

One module per job: ``presets`` (recipes), ``loop`` (schedule, precision, partial saves, data),
``tokenizer`` / ``cloud`` / ``device`` (one trainer per model), ``signals`` and ``evaluate`` (the
card's measurements), ``card`` (card.json and CARD.md), ``command`` (``ciarsim train``'s entry).
Each ``train_*`` trains one model on ``make_dataset(n, TRAIN_SEED)``, saves it with its card
(``checkpoints.save_checkpoint``), reloads it and measures it on held-out data. All randomness comes
from explicit generators.

    ciarsim train all --out models/shapes-256 [--preset shapes-256]
"""

from ciarsim.nn.train.card import card_markdown, write_card
from ciarsim.nn.train.cloud import cloud_config, encode_scenes, train_cloud
from ciarsim.nn.train.command import TRAIN_WHAT, TrainOptions, check_options, train_all, train_models
from ciarsim.nn.train.device import device_step_loss, train_device
from ciarsim.nn.train.evaluate import evaluate_models
from ciarsim.nn.train.loop import (
    CHECKPOINT_EVERY_S, PRECISIONS, PartialSaver, Progress, Schedule, autocast, data_record, heldout_scenes,
    resolve_precision, train_scenes,
)  # fmt: skip
from ciarsim.nn.train.presets import TRAIN_PRESETS, TrainPreset, get_preset
from ciarsim.nn.train.signals import (
    auroc, bootstrap_ci, choose_variants, device_generate, greedy_rejection, teacher_forced_batches,
    teacher_forced_raw, teacher_forced_signals,
)  # fmt: skip
from ciarsim.nn.train.tokenizer import eval_tokenizer, finetune_decoder, train_tokenizer

__all__ = [
    "CHECKPOINT_EVERY_S", "PRECISIONS", "TRAIN_PRESETS", "TRAIN_WHAT", "PartialSaver", "Progress", "Schedule",
    "TrainOptions", "TrainPreset", "auroc", "autocast", "bootstrap_ci", "card_markdown", "check_options",
    "choose_variants", "cloud_config", "data_record", "device_generate", "device_step_loss", "encode_scenes",
    "eval_tokenizer", "evaluate_models", "finetune_decoder", "get_preset", "greedy_rejection", "heldout_scenes",
    "resolve_precision", "teacher_forced_batches", "teacher_forced_raw", "teacher_forced_signals", "train_all",
    "train_cloud", "train_device", "train_models", "train_scenes", "train_tokenizer", "write_card",
]  # fmt: skip
