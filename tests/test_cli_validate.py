"""`scenarios validate` rejects what `run` would: names inside `sweep:` / `zip:`, absurd physical
values; `run` rejects them before any work, naming the file and the point."""

import json
from pathlib import Path

from typer.testing import CliRunner

from ciarsim.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
HEAD = f"""
name: v
workload: {{images: 2, token_grid: 4}}
models: {{checkpoints: {ROOT / "models" / "shapes-256"}}}
policies: [{{name: base}}]
"""
NAMES = HEAD + """
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 5, rtt_ms: 10}
sweep: {models.device.hardware: [snapdragon-8-gen-3, pixel-99]}
zip:
  - {models.cloud.runtime: [eager, cudagraph], models.cloud.model: [llamagen-xl, llamagen-9b]}
"""


def _file(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def _text(res) -> str:
    assert "Traceback" not in res.output
    return " ".join(res.output.split())


def test_validate_names_the_point_of_a_bad_swept_name(tmp_path):
    f = _file(tmp_path, "names.yaml", NAMES)
    text = _text(runner.invoke(app, ["scenarios", "validate", str(f)]))
    assert (f"{f}: sweep point 2 (models.device.hardware=snapdragon-8-gen-3, "
            "models.cloud.runtime=cudagraph, models.cloud.model=llamagen-9b): models.cloud.model: "
            "unknown nominal model 'llamagen-9b'") in text  # fmt: skip
    assert f"{f}: sweep point 3 (models.device.hardware=pixel-99" in text
    assert "unknown hardware 'pixel-99'" in text and ": ok" not in text


def test_run_rejects_a_bad_swept_name_before_decoding(tmp_path):
    f = _file(tmp_path, "names.yaml", NAMES)
    res = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out"),
                              "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert res.exit_code == 2
    assert f"{f}: sweep point 3" in _text(res)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_validate_reports_every_bad_file(tmp_path):
    bad = _file(tmp_path, "names.yaml", NAMES)
    absurd = _file(tmp_path, "absurd.yaml", HEAD + "network: {capacity: constant, "
                   "uplink_mbps: 1e300, downlink_mbps: 1e-300, rtt_ms: 1e12}\n")  # fmt: skip
    good = _file(tmp_path, "good.yaml", HEAD.replace("name: v", "name: g"))
    res = runner.invoke(app, ["scenarios", "validate", str(bad), str(absurd), str(good)])
    assert res.exit_code == 2
    text = _text(res)
    assert f"{bad}: sweep point 3" in text and f"{good}: ok" in text
    assert f"{absurd}: network.uplink_mbps: must be <= 100000, got 1e+300 (line 6)" in text
    assert f"{absurd}: network.downlink_mbps: must be >= 0.001, got 1e-300 (line 6)" in text
    assert f"{absurd}: network.rtt_ms: must be < 60000" in text


def test_an_absurd_swept_value_names_its_place(tmp_path):
    f = _file(tmp_path, "s.yaml", HEAD + "network: {capacity: constant, uplink_mbps: 5, "
              "downlink_mbps: 5}\nsweep: {network.jitter_ms: [5, 1.0e+9]}\n")  # fmt: skip
    res = runner.invoke(app, ["scenarios", "validate", str(f)])
    assert res.exit_code == 2
    assert f"{f}: sweep.network.jitter_ms[1]: must be < 60000" in _text(res)


def test_schema_documents_the_ranges():
    schema = json.loads(runner.invoke(app, ["scenarios", "schema"]).output)
    net = schema["$defs"]["NetworkConfig"]["properties"]
    assert net["uplink_mbps"]["description"].endswith("Range: >= 0.001, <= 100000.")
    assert net["rtt_ms"]["description"].endswith("Range: >= 0, < 60000.")
    assert net["loss_rate"]["description"].endswith("Range: >= 0, < 1.")


def test_validate_imports_external_protocols(tmp_path):
    f = _file(tmp_path, "p.yaml", HEAD.replace("[{name: base}]", '[{name: base}, {name: "nomod:X"}]'))
    res = runner.invoke(app, ["scenarios", "validate", str(f)])
    assert res.exit_code == 2
    assert f"{f}: policy 'nomod:X': cannot import module 'nomod'" in _text(res)


def test_validate_wants_trained_models_as_run_does(tmp_path):
    (tmp_path / "empty").mkdir()
    f = _file(tmp_path, "m.yaml", HEAD.replace(str(ROOT / "models" / "shapes-256"), "empty"))
    res = runner.invoke(app, ["scenarios", "validate", str(f)])
    assert res.exit_code == 2
    assert f"{f}: cannot run this scenario yet" in _text(res) and "ciarsim train all" in _text(res)
