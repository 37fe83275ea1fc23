"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file that looks complete.

Everything is written to a temporary name in the destination folder, flushed, then renamed over
the final name (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet (``.parquet``) or CSV (``.csv``), deterministically and atomically."""
    suffix = Path(path).suffix
    if suffix == ".parquet":
        write_atomic(path, lambda p: df.to_parquet(p, index=False, compression="zstd"))
    elif suffix == ".csv":
        write_atomic(path, lambda p: df.to_csv(p, index=False, float_format="%.6g"))
    else:
        raise ValueError(f"unsupported table format: {path}")
