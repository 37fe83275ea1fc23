"""User folders: images listed in ``captions.csv`` (``file,caption``), centre-cropped and resized
to 64x64, and their split into training rows and held-out rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ciarsim.nn.data.scene import IMAGE_SIZE, DataError, SceneSet

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
