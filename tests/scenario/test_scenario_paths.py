"""Paths in a scenario file are relative to its folder; --set paths to the working directory;
an ideal link refuses the settings it would ignore."""

import os
from pathlib import Path

from ciarsim.scenario import load_scenario

TRACED = """
name: t
models: {checkpoints: ../models/set}
network: {capacity: trace, uplink_trace: up.trace, downlink_trace: /abs/down.trace}
output_dir: out
sweep: {network.uplink_trace: [a.trace, b.trace]}
"""


def test_relative_paths_resolve_against_the_file_folder(write):
    os.mkdir("cfg")
    sc = load_scenario(write(TRACED, "cfg/s.yaml"))
    assert sc.models.checkpoints == "models/set"  # cfg/../models/set, normalised
    assert sc.network.uplink_trace == os.path.join("cfg", "up.trace")
    assert sc.network.downlink_trace == "/abs/down.trace"  # absolute: unchanged
    assert sc.output_dir == os.path.join("cfg", "out")
    assert sc.sweep["network.uplink_trace"] == [os.path.join("cfg", "a.trace"),
                                                os.path.join("cfg", "b.trace")]  # fmt: skip


def test_set_overrides_stay_relative_to_the_working_directory(write):
    os.mkdir("cfg")
    path = write(TRACED, "cfg/s.yaml")
    sc = load_scenario(path, ["models.checkpoints=mine", "sweep.network.uplink_trace=[c.trace]"])
    assert sc.models.checkpoints == "mine"
    assert sc.sweep["network.uplink_trace"] == ["c.trace"]
    assert sc.network.uplink_trace == os.path.join("cfg", "up.trace")  # the file's own value


def test_a_file_in_the_working_directory_keeps_its_paths(write):
    sc = load_scenario(write("models: {checkpoints: models/x}\n"))
    assert sc.models.checkpoints == "models/x"


def test_defaults_stay_relative_to_the_working_directory(write):
    os.mkdir("cfg")
    sc = load_scenario(write("name: t\n", "cfg/s.yaml"))
    assert sc.models.checkpoints == "models/shapes-256" and sc.output_dir is None


def test_ideal_link_refuses_settings_it_would_ignore(error_of):
    msg = error_of("network:\n  capacity: ideal\n  rtt_ms: 80\n  jitter_ms: 5\n  loss_rate: 0.01\n")
    assert "bad.yaml: network: capacity 'ideal' takes no network time" in msg
    assert "rtt_ms, jitter_ms, loss_rate would be ignored" in msg and "(line 1)" in msg
    assert "capacity constant" in msg


def test_ideal_link_refusal_names_the_override(error_of):
    msg = error_of("name: t\n", ["network.rtt_ms=80"])
    assert "rtt_ms would be ignored" in msg and "--set network.rtt_ms=80" in msg


def test_ideal_with_zero_delay_is_fine(write):
    sc = load_scenario(write("network: {capacity: ideal, rtt_ms: 0, loss_rate: 0}\n"))
    assert sc.network.capacity == "ideal"


def test_shipped_scenarios_load_from_another_directory(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    sc = load_scenario(root / "scenarios" / "4g.yaml")
    assert Path(sc.models.checkpoints) == root / "models" / "shapes-256"
    assert (Path(sc.models.checkpoints) / "cloud.json").exists()


def test_a_dump_saved_elsewhere_loads_back_with_the_same_files(write):
    from ciarsim.scenario import dump_scenario

    os.makedirs("cfg")
    os.makedirs("runs/a")
    sc = load_scenario(write(TRACED, "cfg/s.yaml"))
    Path("runs/a/scenario.yaml").write_text(dump_scenario(sc, "runs/a"))
    back = load_scenario("runs/a/scenario.yaml")
    assert back == sc
    assert "checkpoints: ../../models/set" in Path("runs/a/scenario.yaml").read_text()
