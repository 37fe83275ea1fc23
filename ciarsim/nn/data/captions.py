"""The caption grammar (see ``ciarsim.nn.data``): ``caption_of`` writes a scene's caption and
``parse_caption`` reads one back, naming the first unexpected word.
"""

from __future__ import annotations

from ciarsim.nn.data.scene import (
    CELLS, COLOUR_NAMES, SHAPES, SIZES, DataError, ObjectAttrs, SceneAttrs,
)  # fmt: skip

SHAPE_WORDS = {s: (s,) for s in SHAPES} | {"stripes": ("striped", "patch")}
CELL_PHRASES = tuple(
    ("in", "the", *c.split()) if c == "centre"
    else ("on", "the", c) if c in ("left", "right")
    else ("at", "the", *c.split())
    for c in CELLS
)  # fmt: skip
BG_WORDS = {
    "flat": (),
    "vgrad": ("vertical", "gradient"),
    "hgrad": ("horizontal", "gradient"),
    "two_tone": ("two-tone",),
    "texture": ("textured",),
}


# ---------------------------------------------------------------- captions


def caption_of(attrs: SceneAttrs) -> str:
    """The grammar's caption for ``attrs`` (objects in cell order)."""
    parts = [
        " ".join(("a", o.size, o.colour, *SHAPE_WORDS[o.shape], *CELL_PHRASES[o.cell]))
        for o in sorted(attrs.objects, key=lambda o: o.cell)
    ]
    kind = BG_WORDS[attrs.background_kind]
    words = ("plain", attrs.background_colour) if not kind else (attrs.background_colour, *kind)
    article = "an" if words[0][0] in "aeiou" else "a"
    return " and ".join(parts) + " " + " ".join(("on", article, *words, "background"))


def normalise_words(caption: str) -> list[str]:
    return caption.lower().replace(",", " ").replace(".", " ").split()


class _Parser:
    """Recursive-descent parser for the caption grammar; errors name the word and position."""

    def __init__(self, caption: str) -> None:
        self.caption = caption
        self.words = normalise_words(caption)
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
        shape = self.take_seq(SHAPE_WORDS, "a shape (" + "/".join(SHAPES) + ")")
        cell = self.take_seq(dict(enumerate(CELL_PHRASES)), "a position ('at the top left', ...)")
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
            kinds = {k: w for k, w in BG_WORDS.items() if w}
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

