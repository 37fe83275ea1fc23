"""The command line as a user sees it: exit codes, one-line errors, no tracebacks."""

import json

from typer.testing import CliRunner

from ciarsim.cli import app

runner = CliRunner()

GOOD = """
name: cli
workload: {images: 2, token_grid: 4}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40}
policies: [{name: base}]
"""


def test_validate_accepts_every_shipped_scenario():
    import glob

    files = sorted(glob.glob("scenarios/*.yaml"))
    assert files
    res = runner.invoke(app, ["scenarios", "validate", *files])
    assert res.exit_code == 0, res.output
    assert res.output.count(": ok") == len(files)


def test_validate_rejects_a_broken_file_with_one_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("uplink_mbps: 5", "uplink_mbps: -3"))
    res = runner.invoke(app, ["scenarios", "validate", str(bad)])
    assert res.exit_code == 2
    assert "network.uplink_mbps" in res.output and "-3" in res.output
    assert "Traceback" not in res.output


def test_unknown_hardware_is_a_scenario_error(tmp_path):
    bad = tmp_path / "hw.yaml"
    bad.write_text(GOOD + "models: {device: {hardware: pixel-99}}\n")
    res = runner.invoke(app, ["scenarios", "validate", str(bad)])
    assert res.exit_code == 2
    assert "models.device.hardware" in res.output and "pixel-99" in res.output


def test_schema_is_json():
    res = runner.invoke(app, ["scenarios", "schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert {"workload", "models", "network", "policies", "sweep"} <= set(schema["properties"])


def test_run_without_models_says_what_to_build(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD + f"models: {{checkpoints: {tmp_path / 'none'}}}\n")
    res = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out")])
    assert res.exit_code == 4
    assert "ciarsim train all" in res.output
    assert not (tmp_path / "out" / "results.parquet").exists()
    assert "Traceback" not in res.output


def test_missing_file(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "nope.yaml" in res.output


def test_profile_writes_a_profile_csv(tmp_path):
    out_csv = tmp_path / "p.csv"
    res = runner.invoke(app, ["profile", "--model", "tiny", "--batch", "1,2", "--context", "4",
                              "--new-tokens", "1", "--repeats", "2", "--out", str(out_csv)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    df = pd.read_csv(out_csv)
    assert list(df.columns[:8]) == ["gpu", "model", "params_m", "batch", "context", "new_tokens",
                                    "mode", "ms_median"]
    assert len(df) == 2 and (df["ms_median"] > 0).all()


def test_profile_rejects_bad_lists():
    res = runner.invoke(app, ["profile", "--batch", "one"])
    assert res.exit_code == 2 and "--batch" in res.output


def test_train_rejects_unknown_model():
    res = runner.invoke(app, ["train", "unet"])
    assert res.exit_code == 2 and "tokenizer" in res.output
