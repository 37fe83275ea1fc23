"""The three disjoint prompt splits, defined once (issue 11, item 2).

- ``train``: what the models learn from: ``make_dataset(n, TRAIN_SEED)``.
- ``validation``: every choice (loss weights, each signal's CFG variant, thresholds, any
  hyperparameter): scenes of ``VALIDATION_SEED``.
- ``test``: every reported number (the model card, the paper check, every shipped scenario's
  workload, whose ``prompt_start`` indexes this split): scenes of ``EVAL_SEED``; the card uses
  prompts 0-199 and their FD reference images 200-1199.

A scene is drawn from an RNG seeded by ``(seed, index)`` only (``data.make_scene``), so the three
splits are disjoint streams whatever their lengths. For a model set trained on a user folder the
held-out rows (the last 10% of ``captions.csv``) are cut in two: the first half is validation,
the rest test.

Selection code asks for its prompts through ``selection_split``, which refuses ``test``:
calibration (``policies.calibrate``, ``ciarsim thresholds``, experiments) cannot read the prompts
that are reported on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ciarsim.errors import CiarsimError
from ciarsim.nn.data import EVAL_SEED, TRAIN_SEED, SceneSet, folder_split, make_dataset

VALIDATION_SEED = 2


class SplitError(CiarsimError):
    """A prompt split was asked for where it must not be used."""


@dataclass(frozen=True)
class Split:
    name: str
    seed: int  # procedural scenes: make_scene(seed, index)
    purpose: str


SPLITS: dict[str, Split] = {
    "train": Split("train", TRAIN_SEED, "training"),
    "validation": Split("validation", VALIDATION_SEED, "every choice: weights, CFG variants, thresholds"),
    "test": Split("test", EVAL_SEED, "every reported number: card, paper check, shipped scenarios"),
}
SELECTION_SPLITS = ("train", "validation")


def get_split(name: str) -> Split:
    if name not in SPLITS:
        raise SplitError(f"unknown prompt split {name!r}; expected one of {', '.join(SPLITS)}")
    return SPLITS[name]


def selection_split(name: str) -> Split:
    """The split a selection (calibration, a sweep, a variant choice) may read; refuses ``test``."""
    split = get_split(name)
    if split.name not in SELECTION_SPLITS:
        raise SplitError(f"selection code may not read the {name!r} prompts: thresholds, weights and "
                         "variants are chosen on 'validation' and only reported on 'test'")
    return split


def scenes(split: str, n: int, start: int = 0, data_dir=None) -> SceneSet:
    """Scenes ``start .. start + n - 1`` of ``split`` (procedural, or a user folder's rows)."""
    s = get_split(split)
    if data_dir is None:
        return make_dataset(n, s.seed, start=start)
    rows = folder_rows(split, data_dir)
    if start + n > len(rows.captions):
        raise SplitError(f"{data_dir}: the {split} split holds {len(rows.captions)} rows; "
                         f"asked for {n} from {start}")
    return SceneSet(rows.images[start:start + n], rows.captions[start:start + n], None)


def folder_rows(split: str, data_dir) -> SceneSet:
    """A user folder's rows of ``split``: train = the first 90%; the held-out rest is halved into
    validation (first half, at least the remainder after one test row) and test."""
    get_split(split)
    train, held = folder_split(data_dir)
    if split == "train":
        return train
    cut = len(held.captions) // 2
    if split == "validation":
        return SceneSet(held.images[:cut], held.captions[:cut], None)
    return SceneSet(held.images[cut:], held.captions[cut:], None)


def captions(split: str, n: int, start: int = 0) -> list[str]:
    return scenes(split, n, start).captions
