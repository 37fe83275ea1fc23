"""Reading results folders: what is required, and the errors a user can cause."""

import shutil

import pytest

from ciarsim.errors import CiarsimError
from ciarsim.report.load import load_results


def test_reads_tables_samples_and_swept_parameters(results_dir):
    res = load_results(results_dir)
    assert res.swept == ["network.rtt_ms", "network.uplink_mbps"]
    assert res.policies == ["base", "ciar"] and res.name == "tiny-report"
    assert set(res.samples) == {"base", "ciar"} and res.samples["ciar"]["source"].shape == (3, 16)
    assert res.messages is not None and set(res.messages["lane"]) >= {"uplink", "cloud", "device"}


@pytest.mark.parametrize("name", ["points.csv", "scenario.yaml"])
def test_missing_required_file_names_the_path(results_dir, tmp_path, name):
    root = tmp_path / "r"
    shutil.copytree(results_dir, root)
    (root / name).unlink()
    with pytest.raises(CiarsimError, match=name):
        load_results(root)


def test_unreadable_or_incomplete_tables_are_ciarsim_errors(results_dir, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(results_dir, root)
    (root / "results.parquet").write_text("not parquet")
    with pytest.raises(CiarsimError, match="cannot be read"):
        load_results(root)
    (root / "results.parquet").unlink()
    (root / "points.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CiarsimError, match="not a results folder"):
        load_results(root)
