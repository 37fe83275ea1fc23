"""Quality metrics: the committed default classifier must rank degradations correctly.

The ladder: real held-out images, then Gaussian blur, additive noise and shuffled captions at
three strengths each. Caption consistency must fall and the Fréchet distance must rise
monotonically. (FD never sees captions, so shuffling leaves it unchanged; asserted as such.)
"""

import json

import numpy as np
import pytest
import torch

from ciarsim.errors import CheckpointError
from ciarsim.nn.data import EVAL_SEED, DataError, make_dataset
from ciarsim.nn.quality import (
    DEFAULT_CLASSIFIER_PATH,
    ClassifierConfig,
    FDResult,
    caption_consistency,
    caption_consistency_per_image,
    frechet_distance,
    frechet_distance_from_features,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)

N_GEN, N_REF = 200, 400
BLUR_SIGMAS = (1.0, 1.8, 2.8)  # pixels
NOISE_SIGMAS = (12.0, 32.0, 80.0)  # uint8 units
SHUFFLE_SHARES = (1 / 3, 2 / 3, 1.0)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(3 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    x = np.pad(images.astype(np.float64), ((0, 0), (radius, radius), (radius, radius), (0, 0)),
               mode="reflect")  # fmt: skip
    x = sum(w * x[:, i : i + images.shape[1]] for i, w in enumerate(k))
    x = sum(w * x[:, :, i : i + images.shape[2]] for i, w in enumerate(k))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def add_noise(images: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


def shuffle_captions(captions: list[str], share: float) -> list[str]:
    """Rotate the first ``share`` of the captions by one: each of them lands on another image."""
    k = round(share * len(captions))
    return captions[1:k] + captions[:1] + captions[k:]


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


@pytest.fixture(scope="module")
def ladder(clf):
    real = make_dataset(N_GEN, EVAL_SEED)
    ref = make_dataset(N_REF, EVAL_SEED, start=10_000).images
    f_ref = predict(clf, ref).features

    def score(images, captions):
        cc = caption_consistency(images, captions, clf)
        return cc, frechet_distance_from_features(predict(clf, images).features, f_ref).fd

    rows = {"real": score(real.images, real.captions)}
    for s in BLUR_SIGMAS:
        rows[f"blur {s}"] = score(gaussian_blur(real.images, s), real.captions)
    for s in NOISE_SIGMAS:
        rows[f"noise {s}"] = score(add_noise(real.images, s, seed=7), real.captions)
    for s in SHUFFLE_SHARES:
        rows[f"shuffled {s:.2f}"] = score(real.images, shuffle_captions(real.captions, s))
    print("\nladder (caption consistency, FD):")
    for name, (cc, fd) in rows.items():
        print(f"  {name:16s} {cc:.4f} {fd:9.3f}")
    return rows


def test_default_classifier_card():
    card = json.loads(DEFAULT_CLASSIFIER_PATH.with_suffix(".json").read_text())
    assert DEFAULT_CLASSIFIER_PATH.stat().st_size < 2_000_000
    assert min(card["heldout_accuracy"].values()) >= 0.97


def test_real_images_score_near_the_top(ladder):
    cc, fd = ladder["real"]
    assert cc >= 0.95
    assert fd < ladder[f"blur {BLUR_SIGMAS[0]}"][1]


@pytest.mark.parametrize("kind, levels", [("blur", BLUR_SIGMAS), ("noise", NOISE_SIGMAS)])
def test_degradations_are_monotone(ladder, kind, levels):
    rows = [ladder["real"]] + [ladder[f"{kind} {s}"] for s in levels]
    ccs, fds = [r[0] for r in rows], [r[1] for r in rows]
    assert all(a > b for a, b in zip(ccs, ccs[1:])), ccs
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_shuffled_captions_lower_consistency_only(ladder):
    rows = [ladder["real"]] + [ladder[f"shuffled {s:.2f}"] for s in SHUFFLE_SHARES]
    ccs = [r[0] for r in rows]
    assert all(a > b for a, b in zip(ccs, ccs[1:])), ccs
    assert ccs[-1] < 0.5
    assert len({r[1] for r in rows}) == 1  # FD is caption-blind


def test_per_image_consistency_and_fd_result(clf):
    data = make_dataset(6, EVAL_SEED, start=500)
    per = caption_consistency_per_image(data.images, data.captions, clf)
    assert per.shape == (6,) and np.all((per >= 0) & (per <= 1))
    res = frechet_distance(data.images, data.images, clf)
    assert isinstance(res, FDResult) and (res.n_gen, res.n_ref) == (6, 6)
    assert res.fd == pytest.approx(0.0, abs=1e-6)


def test_bad_inputs_are_clear_errors(clf):
    data = make_dataset(2, EVAL_SEED)
    with pytest.raises(DataError, match="2 images but 1 captions"):
        caption_consistency(data.images, data.captions[:1], clf)
    with pytest.raises(DataError, match=r"uint8 images \[n, 64, 64, 3\]"):
        caption_consistency(data.images.astype(np.float32), data.captions, clf)
    with pytest.raises(DataError, match=">= 2 samples"):
        frechet_distance(data.images[:1], data.images, clf)


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    res = frechet_distance_from_features(a, a + np.array([3.0, 0.0, 4.0]))
    assert res.fd == pytest.approx(25.0, rel=1e-9)
    scaled = frechet_distance_from_features(a, 2.0 * a).fd
    expected = np.sum(a.mean(0) ** 2) + np.trace(np.cov(a, rowvar=False))  # (2-1)^2 (|mu|^2 + tr S)
    assert scaled == pytest.approx(expected, rel=1e-9)


TINY = ClassifierConfig(channels=(4, 4, 4, 4), hidden=8, cell_dim=2, scene_dim=2,
                        batch_size=4, warmup_steps=1, eval_n=8)  # fmt: skip


def test_tiny_training_save_load_and_corruption(tmp_path):
    model, metrics = train_classifier(TINY, steps=2, seed=3)
    again, _ = train_classifier(TINY, steps=2, seed=3)
    for (k, v), w in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(v, w), k  # same seed -> same weights
    assert set(metrics["heldout_accuracy"]) == {
        "occupancy", "shape", "colour", "size", "bg_kind", "bg_colour"
    }  # fmt: skip
    path = tmp_path / "clf.safetensors"
    card = save_classifier(model, metrics, path, seed=3)
    assert card["sha256"] and card["torch_version"] == torch.__version__
    images = make_dataset(3, EVAL_SEED).images
    loaded = load_classifier(path)
    assert np.array_equal(predict(loaded, images).features, predict(model, images).features)

    card_path = path.with_suffix(".json")
    card_text = card_path.read_text()
    wrong = json.loads(card_text)
    wrong["config"]["hidden"] = 16
    card_path.write_text(json.dumps(wrong))
    with pytest.raises(CheckpointError, match=r"tensor .* expected shape \(16[,)].*found \(8[,)]"):
        load_classifier(path)
    card_path.write_text(card_text)

    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupted: sha256.*ciarsim train classifier"):
        load_classifier(path)
    path.unlink()
    with pytest.raises(CheckpointError, match="not found.*ciarsim train classifier"):
        load_classifier(path)
