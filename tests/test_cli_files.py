"""`scenarios validate` and `run` check the files a scenario refers to, naming each one."""

from pathlib import Path

from typer.testing import CliRunner

from ciarsim.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

TRACE = """
name: tr
workload: {images: 2, token_grid: 4}
models: {checkpoints: %s}
network: {capacity: trace, uplink_trace: up.trace, downlink_trace: down.trace, rtt_ms: 40}
policies: [{name: base}]
"""


def _scenario(folder: Path, up: str = "1\n2\n", down: str = "3\n", checkpoints=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "up.trace").write_text(up)
    (folder / "down.trace").write_text(down)
    f = folder / "s.yaml"
    f.write_text(TRACE % (checkpoints or ROOT / "models" / "shapes-256"))
    return f


def test_validate_accepts_good_traces_found_next_to_the_file(tmp_path):
    res = runner.invoke(app, ["scenarios", "validate", str(_scenario(tmp_path / "a"))])
    assert res.exit_code == 0, res.output
    assert ": ok" in res.output


def test_validate_rejects_an_empty_trace_naming_both_files(tmp_path):
    f = _scenario(tmp_path / "a", up="\n")
    res = runner.invoke(app, ["scenarios", "validate", str(f)])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert f"{f}: network.uplink_trace:" in text
    assert str(tmp_path / "a" / "up.trace") in text and "the trace is empty" in text
    assert "Traceback" not in res.output


def test_validate_rejects_a_missing_checkpoint_folder(tmp_path):
    f = _scenario(tmp_path / "a", checkpoints="../nowhere")
    res = runner.invoke(app, ["scenarios", "validate", str(f)])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "models.checkpoints" in text and str(tmp_path / "nowhere") in text
    assert "does not exist" in text


def test_validate_reports_every_bad_file(tmp_path):
    empty = _scenario(tmp_path / "a", up="\n")
    missing = _scenario(tmp_path / "b")
    (tmp_path / "b" / "down.trace").unlink()
    malformed = _scenario(tmp_path / "c", up="1\nx\n")
    good = _scenario(tmp_path / "d")
    res = runner.invoke(app, ["scenarios", "validate", str(empty), str(missing), str(malformed),
                              str(good)])  # fmt: skip
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "the trace is empty" in text
    assert f"{missing}: network.downlink_trace:" in text and "does not exist" in text
    assert "line 2: expected an integer timestamp" in text
    assert f"{good}: ok" in text


def test_run_rejects_an_empty_trace_before_decoding(tmp_path):
    f = _scenario(tmp_path / "a", down="")
    res = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert f"{f}: network.downlink_trace:" in text and "the trace is empty" in text
    assert not (tmp_path / "out").exists()
