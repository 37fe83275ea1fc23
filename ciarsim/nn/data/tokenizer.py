"""Word-level caption tokenizer: the grammar's fixed vocabulary, or one built from a user's captions."""

from __future__ import annotations

import numpy as np

from ciarsim.nn.data.captions import BG_WORDS, CELL_PHRASES, SHAPE_WORDS, normalise_words
from ciarsim.nn.data.scene import COLOUR_NAMES, MAX_CAPTION_LEN, SIZES, DataError

# ---------------------------------------------------------------- tokenizer


def _grammar_vocab() -> tuple[str, ...]:
    words = ["a", "an", "and", "on", "at", "in", "the", "background", "plain"]
    words += list(SIZES) + list(COLOUR_NAMES)
    for seq in [*SHAPE_WORDS.values(), *CELL_PHRASES, *BG_WORDS.values()]:
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
        words = dict.fromkeys(w for c in captions for w in normalise_words(c))
        words.pop("<pad>", None), words.pop("<unk>", None)
        return cls(max_len, ("<pad>", "<unk>", *words))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, caption: str) -> list[int]:
        """Word ids, truncated or padded with 0 to ``max_len``."""
        ids = [self._ids.get(w, self.UNK) for w in normalise_words(caption)][: self.max_len]
        return ids + [self.PAD] * (self.max_len - len(ids))

    def encode_batch(self, captions: list[str]) -> np.ndarray:
        """int64 [n, max_len]."""
        return np.asarray([self.encode(c) for c in captions], dtype=np.int64).reshape(
            len(captions), self.max_len
        )

    def decode(self, ids) -> str:
        return " ".join(self.vocab[int(i)] for i in ids if int(i) != self.PAD)

