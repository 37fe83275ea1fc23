"""Procedural scenes: draw a scene's attributes from an RNG seeded by ``(seed, index)`` only and
render them antialiased into a 64x64 RGB image; ``make_scene`` / ``make_dataset``.
"""

from __future__ import annotations

import math

import numpy as np

from ciarsim.nn.data.captions import caption_of
from ciarsim.nn.data.scene import (
    BACKGROUNDS, COLOUR_NAMES, COLOURS, IMAGE_SIZE, N_CELLS, SHAPES, SIZES, DataError, ObjectAttrs, Scene,
    SceneAttrs, SceneSet,
)  # fmt: skip

_RADIUS_PX = {"small": 6.5, "large": 10.0}
_JITTER_PX = 1.5


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

