"""Captioned procedural scenes: the text-to-image dataset the decision models are trained on.

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
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

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

_SHAPE_WORDS = {s: (s,) for s in SHAPES} | {"stripes": ("striped", "patch")}
_CELL_PHRASES = tuple(
    ("in", "the", *c.split()) if c == "centre"
    else ("on", "the", c) if c in ("left", "right")
    else ("at", "the", *c.split())
    for c in CELLS
)  # fmt: skip
_BG_WORDS = {
    "flat": (),
    "vgrad": ("vertical", "gradient"),
    "hgrad": ("horizontal", "gradient"),
    "two_tone": ("two-tone",),
    "texture": ("textured",),
}
_RADIUS_PX = {"small": 6.5, "large": 10.0}
_JITTER_PX = 1.5


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


# ---------------------------------------------------------------- drawing the attributes


def _draw_attrs(rng: np.random.Generator) -> SceneAttrs:
    bg_kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    bg_colour = COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))]
    n_obj = int(rng.integers(1, 4))
    cells = np.sort(rng.choice(N_CELLS, size=n_obj, replace=False))
    others = [c for c in COLOUR_NAMES if c != bg_colour]
    objects = tuple(
        ObjectAttrs(
            shape=SHAPES[rng.integers(len(SHAPES))],
            colour=others[rng.integers(len(others))],
            size=SIZES[rng.integers(len(SIZES))],
            cell=int(cell),
        )
        for cell in cells
    )
    return SceneAttrs(objects, bg_kind, bg_colour)


# ---------------------------------------------------------------- rendering


def _mix(rgb: np.ndarray, target: float, t: float) -> np.ndarray:
    return rgb * (1.0 - t) + target * t


def _jittered(rng: np.random.Generator, name: str) -> np.ndarray:
    return np.asarray(COLOURS[name], dtype=np.float64) + rng.uniform(-6.0, 6.0, size=3)


def _render_background(rng: np.random.Generator, kind: str, colour: str) -> np.ndarray:
    s = IMAGE_SIZE
    c = _jittered(rng, colour)
    img = np.broadcast_to(c, (s, s, 3)).copy()
    if kind in ("vgrad", "hgrad"):
        dark, light = _mix(c, 0.0, 0.35), _mix(c, 255.0, 0.35)
        if rng.random() < 0.5:
            dark, light = light, dark
        t = np.linspace(0.0, 1.0, s)
        ramp = dark + (light - dark) * t[:, None]  # (s, 3)
        img = np.broadcast_to(ramp[:, None, :] if kind == "vgrad" else ramp[None], (s, s, 3))
    elif kind == "two_tone":
        other = _mix(c, 0.0, 0.35) if c.mean() > 100 else _mix(c, 255.0, 0.35)
        yy, xx = np.mgrid[0:s, 0:s] + 0.5
        angle = rng.uniform(0.0, math.pi)
        offset = rng.uniform(-0.15, 0.15) * s
        d = (xx - s / 2) * math.cos(angle) + (yy - s / 2) * math.sin(angle) - offset
        a = np.clip(0.5 - d, 0.0, 1.0)[..., None]
        img = c * (1 - a) + other * a
    elif kind == "texture":
        blocks = rng.normal(0.0, 10.0, size=(s // 2, s // 2))
        img = img + np.repeat(np.repeat(blocks, 2, 0), 2, 1)[..., None]
    return np.array(img, dtype=np.float64)  # a writable copy


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Signed distance in pixels (negative inside) from the object's centre offsets."""
    rho = np.hypot(dx, dy)
    if shape == "circle":
        return rho - r
    if shape == "ring":
        return np.abs(rho - 0.72 * r) - 0.28 * r
    if shape in ("square", "stripes"):
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.8 * r
    if shape == "triangle":  # apex up, inradius 0.6 r, max of the three edge distances
        return np.maximum.reduce(
            [dy, -0.866 * dx - 0.5 * dy, 0.866 * dx - 0.5 * dy]
        ) - 0.6 * r  # fmt: skip
    if shape == "star":
        return _star_sdf(dx, dy, r, inner=0.45 * r)
    raise AssertionError(shape)


def _star_sdf(dx: np.ndarray, dy: np.ndarray, r: float, inner: float) -> np.ndarray:
    half = math.pi / 5  # half the angle between two tips
    theta = np.arctan2(dx, -dy)  # 0 points up
    a = np.abs(np.mod(theta + half, 2 * half) - half)  # angle from the nearest tip
    rho = np.hypot(dx, dy)
    nx, ny = inner * math.sin(half), r - inner * math.cos(half)  # normal of the tip's edge
    norm = math.hypot(nx, ny)
    return (nx * rho * np.cos(a) + ny * rho * np.sin(a) - r * inner * math.sin(half)) / norm


def _render_object(img: np.ndarray, rng: np.random.Generator, obj: ObjectAttrs) -> None:
    r = _RADIUS_PX[obj.size]
    cell_px = IMAGE_SIZE / 3
    cx = (obj.cell % 3 + 0.5) * cell_px + rng.uniform(-_JITTER_PX, _JITTER_PX)
    cy = (obj.cell // 3 + 0.5) * cell_px + rng.uniform(-_JITTER_PX, _JITTER_PX)
    colour = _jittered(rng, obj.colour)
    flip = bool(rng.random() < 0.5)
    x0, x1 = max(int(cx - r - 2), 0), min(int(cx + r + 3), IMAGE_SIZE)
    y0, y1 = max(int(cy - r - 2), 0), min(int(cy + r + 3), IMAGE_SIZE)
    dy, dx = np.mgrid[y0:y1, x0:x1] + 0.5
    dx, dy = dx - cx, dy - cy
    alpha = np.clip(0.5 - _sdf(obj.shape, dx, dy, r), 0.0, 1.0)
    if obj.shape == "stripes":  # diagonal stripes, period 4.5 px, soft edges
        u = (dx + dy if flip else dx - dy) / math.sqrt(2.0)
        alpha = alpha * np.clip(0.5 + 1.5 * np.cos(2 * math.pi * u / 4.5), 0.0, 1.0)
    a = alpha[..., None]
    patch = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = patch * (1.0 - a) + colour * a


def _render(rng: np.random.Generator, attrs: SceneAttrs) -> np.ndarray:
    img = _render_background(rng, attrs.background_kind, attrs.background_colour)
    for obj in attrs.objects:
        _render_object(img, rng, obj)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- captions


def caption_of(attrs: SceneAttrs) -> str:
    """The grammar's caption for ``attrs`` (objects in cell order)."""
    parts = [
        " ".join(("a", o.size, o.colour, *_SHAPE_WORDS[o.shape], *_CELL_PHRASES[o.cell]))
        for o in sorted(attrs.objects, key=lambda o: o.cell)
    ]
    kind = _BG_WORDS[attrs.background_kind]
    words = ("plain", attrs.background_colour) if not kind else (attrs.background_colour, *kind)
    article = "an" if words[0][0] in "aeiou" else "a"
    return " and ".join(parts) + " " + " ".join(("on", article, *words, "background"))


def _normalise_words(caption: str) -> list[str]:
    return caption.lower().replace(",", " ").replace(".", " ").split()


class _Parser:
    """Recursive-descent parser for the caption grammar; errors name the word and position."""

    def __init__(self, caption: str) -> None:
        self.caption = caption
        self.words = _normalise_words(caption)
        self.i = 0

    def fail(self, expected: str) -> DataError:
        found = self.words[self.i] if self.i < len(self.words) else "the end of the caption"
        return DataError(
            f"caption {self.caption!r}: expected {expected} at word {self.i + 1}, found {found!r}"
        )

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.words[j] if j < len(self.words) else None

    def take(self, options, expected: str) -> str:
        word = self.peek()
        if word not in options:
            raise self.fail(expected)
        self.i += 1
        return word

    def take_seq(self, table: dict, expected: str):
        """Longest word sequence in ``table`` (key -> words) at the cursor; returns the key."""
        best = None
        for key, seq in table.items():
            if tuple(self.words[self.i : self.i + len(seq)]) == seq:
                if best is None or len(seq) > len(table[best]):
                    best = key
        if best is None:
            raise self.fail(expected)
        self.i += len(table[best])
        return best

    def object(self) -> ObjectAttrs:
        self.take(("a", "an"), "'a' starting an object")
        size = self.take(SIZES, "a size (small/large)")
        colour = self.take(COLOUR_NAMES, f"a colour ({'/'.join(COLOUR_NAMES)})")
        shape = self.take_seq(_SHAPE_WORDS, "a shape (" + "/".join(SHAPES) + ")")
        cell = self.take_seq(dict(enumerate(_CELL_PHRASES)), "a position ('at the top left', ...)")
        return ObjectAttrs(shape, colour, size, cell)

    def background(self) -> tuple[str, str]:
        self.take(("on",), "'on' starting the background")
        self.take(("a", "an"), "'a' or 'an'")
        plain = self.peek() == "plain"
        self.i += plain
        colour = self.take(COLOUR_NAMES, "a background colour")
        if plain:
            kind = "flat"
        else:
            kinds = {k: w for k, w in _BG_WORDS.items() if w}
            kind = self.take_seq(kinds, "a background kind (vertical/horizontal gradient, ...)")
        self.take(("background",), "'background'")
        if self.i != len(self.words):
            raise self.fail("the end of the caption")
        return kind, colour

    def scene(self) -> SceneAttrs:
        objects = [self.object()]
        while self.peek() == "and":
            self.i += 1
            objects.append(self.object())
        cells = [o.cell for o in objects]
        if len(set(cells)) != len(cells):
            raise DataError(f"caption {self.caption!r}: two objects share one position")
        kind, colour = self.background()
        return SceneAttrs(tuple(sorted(objects, key=lambda o: o.cell)), kind, colour)


def parse_caption(caption: str) -> SceneAttrs:
    """Inverse of the caption grammar. Raises ``DataError`` naming the first unexpected word."""
    return _Parser(caption).scene()


# ---------------------------------------------------------------- scenes and datasets


def make_scene(seed: int, index: int) -> Scene:
    """Scene ``index`` of the set drawn with ``seed``; depends on nothing else."""
    if seed < 0 or index < 0:
        raise DataError(f"make_scene: seed and index must be >= 0, got seed={seed} index={index}")
    rng = np.random.default_rng([seed, index])
    attrs = _draw_attrs(rng)
    return Scene(image=_render(rng, attrs), caption=caption_of(attrs), attrs=attrs)


def make_dataset(n: int, seed: int, start: int = 0) -> SceneSet:
    """Scenes ``start .. start + n - 1`` drawn with ``seed`` (images uint8 [n, 64, 64, 3])."""
    if n < 0 or start < 0:
        raise DataError(f"make_dataset: n and start must be >= 0, got n={n} start={start}")
    scenes = [make_scene(seed, start + i) for i in range(n)]
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, s in enumerate(scenes):
        images[i] = s.image
    return SceneSet(images, [s.caption for s in scenes], [s.attrs for s in scenes])


# ---------------------------------------------------------------- tokenizer


def _grammar_vocab() -> tuple[str, ...]:
    words = ["a", "an", "and", "on", "at", "in", "the", "background", "plain"]
    words += list(SIZES) + list(COLOUR_NAMES)
    for seq in [*_SHAPE_WORDS.values(), *_CELL_PHRASES, *_BG_WORDS.values()]:
        words += [w for w in seq if w not in words]
    return ("<pad>", "<unk>", *dict.fromkeys(words))


class CaptionTokenizer:
    """Word-level tokenizer: pad = 0, unknown words -> 1. The vocabulary is the scene grammar's
    unless one is given (``from_captions`` builds one from a user's captions)."""

    PAD = 0
    UNK = 1

    def __init__(self, max_len: int = MAX_CAPTION_LEN, vocab: list[str] | tuple[str, ...] | None = None) -> None:
        if max_len < 1:
            raise DataError(f"CaptionTokenizer: max_len must be >= 1, got {max_len}")
        self.max_len = max_len
        self.vocab = tuple(vocab) if vocab is not None else _grammar_vocab()
        if self.vocab[:2] != ("<pad>", "<unk>") or len(set(self.vocab)) != len(self.vocab):
            raise DataError("CaptionTokenizer: a vocabulary must start with '<pad>', '<unk>' and have no repeats")
        self._ids = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def from_captions(cls, captions: list[str], max_len: int = MAX_CAPTION_LEN) -> "CaptionTokenizer":
        """The words of ``captions`` in order of first appearance (deterministic), after pad/unk."""
        words = dict.fromkeys(w for c in captions for w in _normalise_words(c))
        words.pop("<pad>", None), words.pop("<unk>", None)
        return cls(max_len, ("<pad>", "<unk>", *words))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, caption: str) -> list[int]:
        """Word ids, truncated or padded with 0 to ``max_len``."""
        ids = [self._ids.get(w, self.UNK) for w in _normalise_words(caption)][: self.max_len]
        return ids + [self.PAD] * (self.max_len - len(ids))

    def encode_batch(self, captions: list[str]) -> np.ndarray:
        """int64 [n, max_len]."""
        return np.asarray([self.encode(c) for c in captions], dtype=np.int64).reshape(
            len(captions), self.max_len
        )

    def decode(self, ids) -> str:
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != self.PAD)


# ---------------------------------------------------------------- user folders


def _read_captions_csv(csv_path: Path) -> list[tuple[str, str]]:
    try:
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "file" not in header or "caption" not in header:
                raise DataError(
                    f"{csv_path}: expected a header with columns 'file,caption', found {header}"
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                name, caption = (row.get("file") or "").strip(), (row.get("caption") or "").strip()
                if not name or not caption:
                    raise DataError(f"{csv_path}, line {line}: empty 'file' or 'caption'")
                rows.append((name, caption))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{csv_path}: cannot read captions CSV ({e})") from e
    if not rows:
        raise DataError(f"{csv_path}: no rows; expected one 'file,caption' row per image")
    return rows


def _load_image(path: Path) -> np.ndarray:
    """RGB uint8 [64, 64, 3]: centre-cropped to a square, then resized (bilinear)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            im = im.crop((left, top, left + side, top + side))
            im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{path}: cannot read image ({e}); expected a PNG or JPEG file") from e


def load_folder(path) -> SceneSet:
    """A user's folder: images (png/jpg) listed in ``captions.csv`` (columns ``file,caption``).

    Images are centre-cropped to a square and resized to 64x64; ``attrs`` is None.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"load_folder: {folder} is not a folder")
    csv_path = folder / "captions.csv"
    if not csv_path.is_file():
        raise DataError(f"load_folder: {csv_path} not found; expected a 'file,caption' CSV")
    rows = _read_captions_csv(csv_path)
    images = np.zeros((len(rows), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, (name, _) in enumerate(rows):
        image_path = folder / name
        if not image_path.is_file():
            raise DataError(f"{csv_path}: image {name!r} (row {i + 1}) not found in {folder}")
        images[i] = _load_image(image_path)
    return SceneSet(images, [c for _, c in rows], None)


HELDOUT_SHARE = 0.1  # of a user folder: kept out of training; the card's metrics and `ciarsim run` use it


def folder_split(path) -> tuple[SceneSet, SceneSet]:
    """A user folder's (training rows, held-out rows): the held-out rows are the last 10% of
    ``captions.csv`` order (at least one)."""
    ds = load_folder(path)
    n = len(ds.captions)
    if n < 2:
        raise DataError(f"{path}: {n} image(s) listed; training needs at least 2 (one is held out)")
    cut = n - max(1, round(n * HELDOUT_SHARE))
    return (SceneSet(ds.images[:cut], ds.captions[:cut], None),
            SceneSet(ds.images[cut:], ds.captions[cut:], None))
