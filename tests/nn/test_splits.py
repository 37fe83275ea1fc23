"""Prompt splits (issue 11 item 2): three disjoint streams defined once; selection never reads test."""

import numpy as np
import pytest
import torch

from ciarsim.nn import splits
from ciarsim.nn.data import EVAL_SEED, TRAIN_SEED, make_dataset
from ciarsim.nn.device import CFG_VARIANTS, SIGNALS, DeviceConfig, DeviceModel, distill_loss, signal_score
from ciarsim.nn.gpt import GPT, GPTConfig
from ciarsim.nn.train import choose_variants


def test_three_disjoint_splits_defined_once():
    seeds = {s.seed for s in splits.SPLITS.values()}
    assert len(seeds) == 3
    assert splits.SPLITS["train"].seed == TRAIN_SEED and splits.SPLITS["test"].seed == EVAL_SEED
    n = 64
    sets = {name: splits.scenes(name, n) for name in splits.SPLITS}
    for a in sets:
        for b in sets:
            if a < b:  # no image of one split at any of these indices appears in another
                ia = {x.tobytes() for x in sets[a].images}
                assert not ia & {x.tobytes() for x in sets[b].images}, (a, b)
    # the card and every workload read the test split: EVAL_SEED from prompt 0
    assert splits.scenes("test", 5, 3).captions == make_dataset(5, EVAL_SEED, start=3).captions


def test_selection_refuses_test_prompts():
    assert splits.selection_split("validation").name == "validation"
    with pytest.raises(splits.SplitError, match="may not read the 'test' prompts"):
        splits.selection_split("test")
    with pytest.raises(splits.SplitError, match="unknown prompt split"):
        splits.get_split("holdout")


def test_folder_held_out_rows_are_halved(tmp_path):
    from PIL import Image

    rows = []
    for i in range(40):
        Image.fromarray(np.full((64, 64, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,a large red circle in the centre on a plain blue background {i}")
    (tmp_path / "captions.csv").write_text("file,caption\n" + "\n".join(rows) + "\n")
    val, test = splits.folder_rows("validation", tmp_path), splits.folder_rows("test", tmp_path)
    train = splits.folder_rows("train", tmp_path)
    assert len(val.captions) == 2 and len(test.captions) == 2 and len(train.captions) == 36
    assert not set(val.captions) & set(test.captions)


def test_variant_rule_is_the_same_for_every_signal():
    rng = np.random.default_rng(0)
    reject = rng.random((20, 16)) < 0.4
    sig = {"reject": reject}
    for name in SIGNALS:  # conditional predicts the label for interval, guided for the others
        good, bad = reject + 0.5 * rng.random(reject.shape), rng.random(reject.shape)
        sig[f"{name}/conditional"], sig[f"{name}/guided"] = (good, bad) if name == "interval" else (bad, good)
    out = choose_variants(sig)
    assert out["interval"]["variant"] == "conditional"
    assert out["entropy"]["variant"] == out["max_prob"]["variant"] == "guided"


def _tiny_pair(n_layer=1):
    cfg = GPTConfig(vocab_size=32, text_vocab_size=50, cap_len=4, grid=2, dim=16, n_layer=2, n_head=2, ffn_hidden=32)
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cloud = GPT(cfg)
        dev = DeviceModel(DeviceConfig(cloud=cfg, n_layer=n_layer, summary_dim=4, phi_hidden=8))
    dev.init_from_cloud(cloud)
    return cloud, dev, g


def test_two_layer_device_copies_two_cloud_blocks():
    cloud, dev, _ = _tiny_pair(n_layer=2)
    assert len(dev.trunk.blocks) == 2
    for i in range(2):
        for k, v in dev.trunk.blocks[i].state_dict().items():
            torch.testing.assert_close(v, cloud.blocks[i].state_dict()[k])


def test_distill_loss_terms():
    logits = torch.randn(4, 3, 32, generator=torch.Generator().manual_seed(1))
    w = __import__("ciarsim.nn.device", fromlist=["InterDROWeights"]).InterDROWeights(lambda_kl=2.0)
    same = distill_loss(logits.clone(), logits, 3.0, w)
    assert set(same) == {"kl_guided", "kl_caption", "kl_null"}
    assert all(abs(v.item()) < 1e-5 for v in same.values())
    other = distill_loss(torch.zeros_like(logits), logits, 3.0, w)
    assert all(v.item() > 0 for v in other.values())


def test_signal_scores_in_both_variants():
    cloud, dev, _ = _tiny_pair()
    out = dev(torch.randint(0, 32, (4, 6)))  # rows 0-1 caption, 2-3 null
    for name in SIGNALS:
        for var in CFG_VARIANTS:
            assert signal_score(out, 3.0, name, var).shape == (2, 6)
    torch.testing.assert_close(signal_score(out, 3.0, "interval", "conditional"), out.U[:2])
