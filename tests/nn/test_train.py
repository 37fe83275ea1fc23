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


def test_precision_resolution_and_errors():
    from ciarsim.errors import CiarsimError
    from ciarsim.nn.train import resolve_precision

    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") in ("bf16", "fp32")
    with pytest.raises(CiarsimError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", "cpu")


def test_bf16_training_and_step_override_are_recorded(tmp_path):
    from ciarsim.nn.train import train_device, train_tokenizer

    train_tokenizer(tmp_path, preset="tiny")
    cloud = train_cloud(tmp_path, preset="tiny", precision="bf16", steps=3, batch=2)
    assert cloud["training"]["precision"] == "bf16" and cloud["training"]["steps"] == 3
    assert cloud["training"]["batch"] == 2
    dev = train_device(tmp_path, preset="tiny", precision="bf16", steps=2)
    assert dev["training"]["precision_cloud_passes"] == "bf16" and dev["training"]["steps"] == 2
    assert all(np.isfinite(v) for v in dev["training"]["final_loss"].values())
    models = load_models(tmp_path)  # weights saved fp32/fp16 as usual, loadable
    assert models.device is not None


def test_train_cli_rejects_unknown_precision(tmp_path):
    from typer.testing import CliRunner

    from ciarsim.cli import app

    r = CliRunner().invoke(app, ["train", "cloud", "--out", str(tmp_path), "--precision", "fp8"])
    assert r.exit_code != 0 and "unknown precision 'fp8'" in r.output
    assert "Traceback" not in r.output


def test_partial_cloud_checkpoint_keeps_history_and_resumes(tmp_path, monkeypatch):
    """A killed resume leaves a partial cloud whose card still lists the earlier rounds and data."""
    import ciarsim.nn.checkpoints as ck
    import ciarsim.nn.train as tr
    import ciarsim.nn.train.loop as loop

    tr.train_tokenizer(tmp_path, preset="tiny")
    train_cloud(tmp_path, preset="tiny", steps=2)
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY_S", 0.0)  # save after every step

    class Killed(Exception):
        pass

    real_save = ck.save_checkpoint

    def save_then_die(model, out_dir, kind, card):
        real_save(model, out_dir, kind, card)
        if card["training"].get("partial") and card["training"]["steps"] >= 2:
            raise Killed

    monkeypatch.setattr(ck, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_cloud(tmp_path, preset="tiny", resume=True, steps=3)
    partial = json.loads((tmp_path / "cloud.json").read_text())
    assert partial["training"]["partial"] is True and len(partial["training"]["earlier_rounds"]) == 1
    assert partial["data"]["tokenizer_sha256"]
    monkeypatch.setattr(ck, "save_checkpoint", real_save)
    resumed = train_cloud(tmp_path, preset="tiny", resume=True, steps=2)
    assert [r["steps"] for r in resumed["training"]["earlier_rounds"]] == [2, 2]
    assert resumed["training"]["total_steps"] == 6


def test_train_cli_has_every_stage_and_option(tmp_path):
    """One training CLI: the stages and options of the old ``python -m ciarsim.nn.train`` work
    through ``ciarsim train`` (tokenizer-decoder, --batch, --phi-every, --resume, evaluate)."""
    from typer.testing import CliRunner

    from ciarsim.cli import app

    runner, out = CliRunner(), str(tmp_path)

    def train(*args):
        r = runner.invoke(app, ["train", *args, "--out", out, "--preset", "tiny", "--threads", "1"])
        assert r.exit_code == 0, r.output
        return r

    train("tokenizer")
    train("tokenizer-decoder", "--budget-min", "5")
    tok = json.loads((tmp_path / "tokenizer.json").read_text())
    assert len(tok["training"]["decoder_finetune"]) == 2  # the tokenizer's own phase, then this one
    train("cloud", "--steps", "2", "--batch", "3")
    train("cloud", "--resume", "--steps", "1")
    cloud = json.loads((tmp_path / "cloud.json").read_text())["training"]
    assert cloud["batch"] == 4 and cloud["steps"] == 1 and [r["steps"] for r in cloud["earlier_rounds"]] == [2]
    train("device", "--steps", "2", "--batch", "2", "--phi-every", "1", "--kl", "0.5", "--device-layers", "2")
    dev = json.loads((tmp_path / "device.json").read_text())["training"]
    assert (dev["steps"], dev["batch"], dev["phi_every"], dev["layers"]) == (2, 2, 1, 2)
    assert dev["loss_weights"]["lambda_kl"] == 0.5
    assert dev["teacher"] == "frozen cloud, teacher-forced on training-scene codes"
    train("device", "--resume", "--steps", "1", "--on-cloud-samples", "3", "--samples-from", "2")
    dev = json.loads((tmp_path / "device.json").read_text())["training"]
    assert dev["teacher"] == "frozen cloud, teacher-forced on its own samples of training captions 2..4"
    assert dev["layers"] == 2 and [r["steps"] for r in dev["earlier_rounds"]] == [2]
    r = runner.invoke(app, ["train", "device", "--resume", "--on-cloud-samples", "99999", "--out", out, "--preset", "tiny"])
    assert r.exit_code == 1 and "--on-cloud-samples 99999 from caption 0 needs 99999 training captions" in r.output
    assert "Traceback" not in r.output
    train("evaluate")
    assert json.loads((tmp_path / "card.json").read_text())["device"]["layers"] == 2


@pytest.mark.parametrize("args, message", [
    (["tokenizer", "--steps", "3"], "train tokenizer: --steps does not apply"),
    (["all", "--resume"], "train all: --resume does not apply"),
    (["cloud", "--phi-every", "2"], "train cloud: --phi-every does not apply"),
    (["device", "--batch", "0"], "--batch must be > 0, got 0"),
    (["cloud", "--on-cloud-samples", "5"], "train cloud: --on-cloud-samples does not apply"),
    (["device", "--samples-from", "3"], "--samples-from must be >= 0 and used with --on-cloud-samples"),
    (["cloud", "--preset", "huge"], "unknown training preset 'huge'"),
])
def test_train_cli_refuses_options_that_do_not_apply(tmp_path, args, message):
    from typer.testing import CliRunner

    from ciarsim.cli import app

    r = CliRunner().invoke(app, ["train", *args, "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m").exists()  # nothing started


def test_train_cli_prints_plain_progress_lines_when_not_a_terminal(tmp_path):
    """A background run's log shows each stage's progress (no live bar outside a terminal)."""
    from typer.testing import CliRunner

    from ciarsim.cli import app

    r = CliRunner().invoke(app, ["train", "tokenizer", "--out", str(tmp_path), "--preset", "tiny"])
    assert r.exit_code == 0, r.output
    assert "tokenizer: step 0/6 mse=" in r.output and "tokenizer: step 6/6 psnr_db=" in r.output
