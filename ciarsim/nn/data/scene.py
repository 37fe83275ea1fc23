"""What a captioned scene is: image size, colours, shapes, sizes, backgrounds and grid cells, and the
frozen records of one scene (``Scene``, ``SceneAttrs``) and of a set of them (``SceneSet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ciarsim.errors import CiarsimError

IMAGE_SIZE = 64
TRAIN_SEED = 0
EVAL_SEED = 1
MAX_CAPTION_LEN = 40  # words; the longest generated caption has 35

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 20),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
}
COLOUR_NAMES = tuple(COLOURS)
SHAPES = ("circle", "square", "triangle", "ring", "star", "stripes")
SIZES = ("small", "large")
BACKGROUNDS = ("flat", "vgrad", "hgrad", "two_tone", "texture")
CELLS = (
    "top left", "top", "top right",
    "left", "centre", "right",
    "bottom left", "bottom", "bottom right",
)  # fmt: skip
N_CELLS = len(CELLS)


class DataError(CiarsimError):
    """A user dataset (folder, CSV, image) or caption cannot be read."""

    exit_code = 2


@dataclass(frozen=True)
class ObjectAttrs:
    shape: str  # one of SHAPES
    colour: str  # one of COLOUR_NAMES
    size: str  # one of SIZES
    cell: int  # 0..8, row-major index into CELLS


@dataclass(frozen=True)
class SceneAttrs:
    """Everything a caption says about a scene; objects sorted by cell."""

    objects: tuple[ObjectAttrs, ...]
    background_kind: str  # one of BACKGROUNDS
    background_colour: str  # one of COLOUR_NAMES


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # uint8 [64, 64, 3]
    caption: str
    attrs: SceneAttrs


@dataclass(frozen=True)
class SceneSet:
    images: np.ndarray  # uint8 [n, 64, 64, 3]
    captions: list[str]
    attrs: list[SceneAttrs] | None  # None for user folders (no ground truth)

    def __len__(self) -> int:
        return len(self.captions)
