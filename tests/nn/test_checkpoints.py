"""Checkpoints: safetensors round trip, hash and shape verification, CheckpointError messages."""

import json

import pytest
import torch

from ciarsim.errors import CheckpointError
from ciarsim.nn.checkpoints import load_checkpoint, save_checkpoint
from ciarsim.nn.gpt import GPT, GPT_PRESETS, image_logits


def _cloud():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return GPT(GPT_PRESETS["tiny"](text_vocab_size=10, cap_len=5)).eval()


def test_round_trip_weights_and_card(tmp_path):
    model = _cloud()
    card = save_checkpoint(model, tmp_path, "cloud", {"training": {"steps": 3}})
    loaded, card2 = load_checkpoint(tmp_path, "cloud")
    assert card2["sha256"] == card["sha256"] and card2["training"]["steps"] == 3
    assert set(card2["software"]) == {"torch", "python", "ciarsim"}
    for k, v in model.state_dict().items():  # stored fp16, loaded fp32
        torch.testing.assert_close(loaded.state_dict()[k], v.half().float())
    cap, img = torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long)
    assert image_logits(loaded, cap, img).shape == (1, 16, 64)


def test_corrupted_weights_raise_with_rebuild_command(tmp_path):
    save_checkpoint(_cloud(), tmp_path, "cloud", {})
    path = tmp_path / "cloud.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"(?s)sha256 expected.*found.*ciarsim train cloud"):
        load_checkpoint(tmp_path, "cloud")


def test_shape_mismatch_names_tensor(tmp_path):
    save_checkpoint(_cloud(), tmp_path, "cloud", {})
    card_path = tmp_path / "cloud.json"
    card = json.loads(card_path.read_text())
    card["config"]["dim"] = 64
    card["config"]["ffn_hidden"] = 128
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=r"expected shape .* found"):
        load_checkpoint(tmp_path, "cloud")


def test_missing_files_raise(tmp_path):
    with pytest.raises(CheckpointError, match="ciarsim train device"):
        load_checkpoint(tmp_path, "device")
    save_checkpoint(_cloud(), tmp_path, "cloud", {})
    (tmp_path / "cloud.safetensors").unlink()
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path, "cloud")


def test_linked_weights_load_verified_without_a_copy(tmp_path):
    from ciarsim.nn.checkpoints import link_checkpoint

    src, dst = tmp_path / "a", tmp_path / "b"
    model = _cloud()
    save_checkpoint(model, src, "cloud", {})
    card = link_checkpoint(src, dst, "cloud")
    assert card["weights"] == "../a/cloud.safetensors" and not (dst / "cloud.safetensors").exists()
    loaded, _ = load_checkpoint(dst, "cloud")
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k].half().float())
    data = bytearray((src / "cloud.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (src / "cloud.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 expected"):
        load_checkpoint(dst, "cloud")  # the reference is verified like a local file
