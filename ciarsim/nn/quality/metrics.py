"""The quality metrics, pure functions of images and a classifier: caption consistency (the CLIP
score analogue) and the Fréchet distance of classifier features (the FID analogue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ciarsim.nn.data import BACKGROUNDS, COLOUR_NAMES, SHAPES, SIZES, DataError, parse_caption
from ciarsim.nn.quality.classifier import AttributeClassifier, check_images, predict
from ciarsim.nn.quality.store import load_classifier


@dataclass(frozen=True)
class FDResult:
    fd: float
    n_gen: int
    n_ref: int



def _default(classifier: AttributeClassifier | None) -> AttributeClassifier:
    return load_classifier() if classifier is None else classifier


def caption_consistency_per_image(
    images: np.ndarray, captions: list[str], classifier: AttributeClassifier | None = None
) -> np.ndarray:
    """Per image, the share (0..1) of the caption's attributes the classifier finds.

    Each object counts 3 attributes (shape, colour, size, all read at its stated cell), the
    background 2 (kind, colour). Captions must follow the grammar of ``ciarsim.nn.data``.
    """
    images = check_images(images, "caption_consistency")
    if len(images) != len(captions):
        raise DataError(
            f"caption_consistency: {len(images)} images but {len(captions)} captions; "
            "expected one caption per image"
        )
    pred = predict(_default(classifier), images)
    scores = np.zeros(len(images))
    for i, caption in enumerate(captions):
        a = parse_caption(caption)
        hits = [
            pred.bg_kind[i] == BACKGROUNDS.index(a.background_kind),
            pred.bg_colour[i] == COLOUR_NAMES.index(a.background_colour),
        ]
        for o in a.objects:
            hits.append(pred.shape[i, o.cell] == 1 + SHAPES.index(o.shape))
            hits.append(pred.colour[i, o.cell] == 1 + COLOUR_NAMES.index(o.colour))
            hits.append(pred.size[i, o.cell] == 1 + SIZES.index(o.size))
        scores[i] = np.mean(hits)
    return scores


def caption_consistency(
    images: np.ndarray, captions: list[str], classifier: AttributeClassifier | None = None
) -> float:
    """Mean over images of ``caption_consistency_per_image`` (0..1, higher is better)."""
    return float(np.mean(caption_consistency_per_image(images, captions, classifier)))


def _sqrtm_trace_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr(sqrt(s1 @ s2)) for symmetric PSD s1, s2, via the eigenvalues of sqrt(s1) s2 sqrt(s1)."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))


def frechet_distance_from_features(f_gen: np.ndarray, f_ref: np.ndarray) -> FDResult:
    """Fréchet distance between Gaussians fitted to two feature sets [n, d] (float64)."""
    for name, f in (("generated", f_gen), ("reference", f_ref)):
        if f.ndim != 2 or len(f) < 2:
            raise DataError(f"frechet_distance: {name} set needs >= 2 samples, found {len(f)}")
    mu1, mu2 = f_gen.mean(0), f_ref.mean(0)
    s1, s2 = np.cov(f_gen, rowvar=False), np.cov(f_ref, rowvar=False)
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2))
    fd -= 2.0 * _sqrtm_trace_product(s1, s2)
    return FDResult(fd=max(fd, 0.0), n_gen=len(f_gen), n_ref=len(f_ref))


def frechet_distance(
    gen_images: np.ndarray, ref_images: np.ndarray, classifier: AttributeClassifier | None = None
) -> FDResult:
    """FID analogue between uint8 image sets [n, 64, 64, 3] (lower is better)."""
    model = _default(classifier)
    f_gen = predict(model, check_images(gen_images, "frechet_distance (generated)")).features
    f_ref = predict(model, check_images(ref_images, "frechet_distance (reference)")).features
    return frechet_distance_from_features(f_gen, f_ref)
