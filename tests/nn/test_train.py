"""Training: AUROC helper, tiny end-to-end train_all in a temporary directory."""

import json

import numpy as np
import pytest

from ciarsim.nn.checkpoints import load_models
from ciarsim.nn.train import auroc, train_all, train_cloud


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert np.isnan(auroc([0.1, 0.2], [1, 1]))


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 5, 60).astype(float), rng.random(60) < 0.4
    pos, neg = s[y], s[~y]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert auroc(s, y) == pytest.approx(pairs)


def test_tiny_train_all_end_to_end(tmp_path):
    seen = []
    card = train_all(tmp_path, preset="tiny", progress=lambda *a: seen.append(a[0]))
    assert {"tokenizer", "cloud", "device", "evaluate"} <= set(seen)
    on_disk = json.loads((tmp_path / "card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    for key in ("psnr_db", "codebook_usage"):
        assert key in on_disk["tokenizer"]
    assert 0.0 <= on_disk["device"]["greedy_agreement"] <= 1.0
    assert "auroc_interval" in on_disk["interhead"] and "targets" in on_disk
    assert (tmp_path / "CARD.md").read_text().startswith("# Decision models")
    models = load_models(tmp_path)
    assert len(models.device.trunk.blocks) == 1
    assert json.loads((tmp_path / "device.json").read_text())["training"]["loss_weights"]["alpha"] > 0
    resumed = train_cloud(tmp_path, preset="tiny", resume=True)
    assert len(resumed["training"]["earlier_rounds"]) == 1
    assert resumed["training"]["total_steps"] == 2 * resumed["training"]["steps"]
