"""Files in and out, below every layer: atomic writes and content digests.

A crash or Ctrl-C never leaves a half-written file that looks complete: everything is written to a
temporary name in the destination folder, flushed, then renamed over the final name (``os.replace``
is atomic on POSIX within one file system). ``file_digest`` is the SHA-256 a cache or result is
keyed by; it remembers digests by (path, mtime, size), so a changed file is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

MISSING = "missing"
_digests: dict[tuple[str, int, int], str] = {}  # a memo of file contents' digests, never a result

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
    """Write ``df`` as Parquet (``.parquet``), CSV (``.csv``) or an uncompressed Arrow IPC file
    (``.arrow``: fast to read back, for intermediate parts), deterministically and atomically."""
    suffix = Path(path).suffix
    if suffix == ".parquet":
        write_atomic(path, lambda p: df.to_parquet(p, index=False, compression="zstd"))
    elif suffix == ".arrow":
        write_atomic(path, lambda p: df.reset_index(drop=True).to_feather(p, compression="uncompressed"))
    elif suffix == ".csv":
        write_atomic(path, lambda p: df.to_csv(p, index=False, float_format="%.6g"))
    else:
        raise ValueError(f"unsupported table format: {path}")


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of the file's bytes, ``"missing"`` if it is not a file."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError:
        return MISSING
    if not path.is_file():
        return MISSING
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]
