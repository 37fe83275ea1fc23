"""Captioned procedural scenes: the text-to-image dataset the decision models are trained on.
May import: numpy, PIL (user folders) and ciarsim.errors; nothing else from ciarsim (the nn layer's base).

Every image is 64x64 RGB uint8 and has what CIAR exploits: large homogeneous regions (flat
colours, smooth gradients) where the next token is easy, and antialiased object boundaries and
textures where it is not. A scene is drawn from an RNG seeded by ``(seed, index)`` only, so
``make_scene(seed, i)`` is byte-identical whatever else was generated.

Scene grammar (one caption per scene, words from a fixed vocabulary)::

    caption    := object ("and" object)* background
    object     := "a" size colour shape position
    background := "on" ("a"|"an") ["plain"] colour [kind] "background"
    size       := "large" | "small"
    shape      := "circle" | "square" | "triangle" | "ring" | "star" | "striped patch"
    position   := "at the top left" | "at the top" | "at the top right" | "on the left"
                | "in the centre" | "on the right" | "at the bottom left" | "at the bottom"
                | "at the bottom right"
    kind       := "vertical gradient" | "horizontal gradient" | "two-tone" | "textured"

e.g. "a large red circle at the top left and a small blue square in the centre on a green
vertical gradient background". One to three objects, each in its own cell of a 3x3 grid,
listed in reading order; objects never share the background's colour.

Split convention: training data is ``make_dataset(n, TRAIN_SEED)``, held-out evaluation data is
``make_dataset(n, EVAL_SEED)``. Nothing that is evaluated may be trained on ``EVAL_SEED``.


One module per job: ``scene`` (what a scene is), ``render`` (drawing and rendering), ``captions``
(the grammar, both ways), ``tokenizer`` (caption ids), ``folder`` (a user's images + captions.csv).
"""

from ciarsim.nn.data.captions import caption_of, parse_caption
from ciarsim.nn.data.folder import HELDOUT_SHARE, folder_split, load_folder
from ciarsim.nn.data.render import make_dataset, make_scene
from ciarsim.nn.data.scene import (
    BACKGROUNDS, CELLS, COLOUR_NAMES, COLOURS, EVAL_SEED, IMAGE_SIZE, MAX_CAPTION_LEN, N_CELLS, SHAPES, SIZES,
    TRAIN_SEED, DataError, ObjectAttrs, Scene, SceneAttrs, SceneSet,
)  # fmt: skip
from ciarsim.nn.data.tokenizer import CaptionTokenizer

__all__ = [
    "BACKGROUNDS", "CELLS", "COLOURS", "COLOUR_NAMES", "EVAL_SEED", "HELDOUT_SHARE", "IMAGE_SIZE", "MAX_CAPTION_LEN",
    "N_CELLS", "SHAPES", "SIZES", "TRAIN_SEED", "CaptionTokenizer", "DataError", "ObjectAttrs", "Scene", "SceneAttrs",
    "SceneSet", "caption_of", "folder_split", "load_folder", "make_dataset", "make_scene", "parse_caption",
]  # fmt: skip
