"""Training on a user's folder of images + captions.csv (the real-data path)."""

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from ciarsim.cli import app
from ciarsim.nn.checkpoints import load_models
from ciarsim.nn.data import CaptionTokenizer, DataError, make_dataset
from ciarsim.nn.train import data_record, get_preset, heldout_scenes, train_all, train_scenes

WORDS = ["zebra", "lighthouse", "meadow", "harbour", "violet", "kite", "canyon", "lantern", "orchid", "glacier"]


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    images = make_dataset(10, seed=7).images
    rows = ["file,caption"]
    for i, (img, word) in enumerate(zip(images, WORDS)):
        Image.fromarray(img).resize((80, 60)).save(d / f"im{i}.png")
        rows.append(f"im{i}.png,a photo of a {word} at dusk")
    (d / "captions.csv").write_text("\n".join(rows) + "\n")
    return d


def test_folder_split_and_record(folder):
    p = get_preset("tiny")
    train, held = train_scenes(p, folder), heldout_scenes(99, folder)
    assert len(train.captions) == 9 and len(held.captions) == 1
    assert held.captions == ["a photo of a glacier at dusk"]  # the last row is held out
    rec = data_record(p, folder)
    assert rec["source"] == "folder" and rec["n_train"] == 9 and rec["n_heldout"] == 1
    assert len(rec["captions_csv_sha256"]) == 64
    assert data_record(p)["source"] == "procedural"


def test_caption_vocab_from_captions():
    tok = CaptionTokenizer.from_captions(["A zebra, here.", "the zebra and a kite"])
    assert tok.vocab == ("<pad>", "<unk>", "a", "zebra", "here", "the", "and", "kite")
    assert tok.encode("a walrus")[:2] == [2, tok.UNK]
    with pytest.raises(DataError, match="must start with"):
        CaptionTokenizer(vocab=["a", "b"])


def test_train_all_on_a_folder(tmp_path, folder):
    out = tmp_path / "models"
    card = train_all(out, preset="tiny", data_dir=folder)
    cloud = json.loads((out / "cloud.json").read_text())
    assert cloud["data"]["source"] == "folder" and "zebra" in cloud["data"]["caption_vocab"]
    assert "glacier" not in cloud["data"]["caption_vocab"]  # held-out words stay unknown
    device = json.loads((out / "device.json").read_text())
    assert device["data"]["n_train"] == 9 and device["data"]["cloud_sha256"] == cloud["sha256"]
    assert card["eval"]["n_prompts"] == 1 and "held-out rows" in card["eval"]["prompts"]
    assert card["cloud"]["caption_consistency"] is None and "not measured" in card["cloud"]["note"]
    assert card["targets"]["cloud.caption_consistency >= 0.85"] is None
    assert 0.0 <= card["device"]["greedy_agreement"] <= 1.0
    models = load_models(out)
    ids = models.captions.encode("a zebra")
    assert ids[1] == models.captions.vocab.index("zebra") != CaptionTokenizer.UNK
    assert models.captions.vocab_size <= models.cloud.cfg.text_vocab_size


def test_cli_folder_errors(tmp_path, folder):
    runner = CliRunner()
    r = runner.invoke(app, ["train", "tokenizer", "--preset", "tiny", "--out", str(tmp_path / "m"),
                            "--data", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "is not a folder" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m" / "tokenizer.safetensors").exists()
    r = runner.invoke(app, ["train", "classifier", "--data", str(folder)])
    assert r.exit_code != 0 and "--data does not apply" in r.output


def test_run_on_a_folder_trained_set_uses_its_heldout_captions(tmp_path, folder):
    """`ciarsim run` on a folder-trained model set: prompts are the folder's held-out rows, quality
    is reported as not measured, too many images and an edited captions.csv are clear errors."""
    import numpy as np
    import pandas as pd

    out = tmp_path / "models"
    train_all(out, preset="tiny", data_dir=folder)
    grid = json.loads((out / "cloud.json").read_text())["config"]["grid"]
    scenario = tmp_path / "s.yaml"
    body = ("name: mine\nworkload: {images: %d, token_grid: %d}\nmodels: {checkpoints: %s}\n"
            "network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40}\n"
            "policies: [{name: base}, {name: ciar, tau: 0.1}]\n")
    scenario.write_text(body % (1, grid, out))
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "r"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "r" / "samples" / "ciar.npz", allow_pickle=False) as z:
        assert list(z["captions"]) == ["a photo of a glacier at dusk"]
    df = pd.read_parquet(tmp_path / "r" / "results.parquet")
    assert "caption_consistency" not in df.columns and (df["latency_ms"] > 0).all()

    scenario.write_text(body % (2, grid, out))
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "r2"), "--workers", "1"])
    assert r.exit_code != 0 and "holds 1 held-out captions" in r.output and "Traceback" not in r.output

    scenario.write_text(body % (1, grid, out))
    csv = folder / "captions.csv"
    csv.write_text(csv.read_text().replace("glacier", "volcano"))
    r = runner.invoke(app, ["run", str(scenario), "--out", str(tmp_path / "r3"), "--workers", "1"])
    assert r.exit_code != 0 and "changed since the models were trained" in r.output
