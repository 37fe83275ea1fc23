"""Bad command-line options fail up front, before any decoding, with one line and exit 2."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ciarsim.cli
from ciarsim.cli import EXIT_CODES, app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
GOOD = f"""
name: opts
workload: {{images: 2, token_grid: 4}}
models: {{checkpoints: {ROOT / "models" / "shapes-256"}}}
network: {{capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 40}}
policies: [{{name: base}}]
"""


def _run(tmp_path: Path, *options: str):
    f = tmp_path / "s.yaml"
    f.write_text(GOOD)
    res = runner.invoke(app, ["run", str(f), "--cache-dir", str(tmp_path / "cache"), *options])
    assert "Traceback" not in res.output
    assert not (tmp_path / "cache").exists(), "it started decoding"
    return res


def _one_error_line(res) -> str:
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_out_under_a_file(tmp_path):
    (tmp_path / "notes.md").write_text("x")
    res = _run(tmp_path, "--out", str(tmp_path / "notes.md" / "out"))
    assert res.exit_code == 2
    line = _one_error_line(res)
    assert "--out" in line and f"'{tmp_path / 'notes.md'}' is a file" in line


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("x")
    res = _run(tmp_path, "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and "is a file" in _one_error_line(res)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to any folder")
def test_out_in_an_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    res = _run(tmp_path, "--out", str(locked / "out"))
    assert res.exit_code == 2 and "Permission denied" in _one_error_line(res)


def test_out_that_cannot_be_written(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ciarsim.cli.tempfile, "TemporaryFile", refuse)
    res = _run(tmp_path, "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    line = _one_error_line(res)
    assert f"--out: cannot write to the folder '{tmp_path / 'out'}': Permission denied" in line


@pytest.mark.parametrize("options, expected", [
    (["--workers", "-3"], "--workers: expected 0 (one per CPU core) or more, got -3"),
    (["--executor", "dask"], "--executor: expected 'local' or 'ray', got 'dask'"),
    (["--messages", "some"], "--messages: expected 'first' or 'all', got 'some'"),
])  # fmt: skip
def test_bad_options_exit_2(tmp_path, options, expected):
    res = _run(tmp_path, "--out", str(tmp_path / "out"), *options)
    assert res.exit_code == 2 and expected in _one_error_line(res)
    assert not (tmp_path / "out").exists()


def test_readme_lists_the_exit_codes():
    readme = (ROOT / "README.md").read_text()
    for code in EXIT_CODES:
        assert f"| {code} | {EXIT_CODES[code]} |" in readme, code


@pytest.mark.parametrize("command", [
    ["compare", "a", "b"],
    ["train", "tokenizer", "--preset", "tiny"],
    ["profile", "--model", "tiny"],
])  # fmt: skip
def test_other_commands_check_their_out_first(tmp_path, command):
    (tmp_path / "notes.md").write_text("x")
    target = tmp_path / "notes.md" / ("p.csv" if command[0] == "profile" else "out")
    res = runner.invoke(app, [*command, "--out", str(target)])
    assert res.exit_code == 2 and "is a file" in _one_error_line(res)
