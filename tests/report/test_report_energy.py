"""The report's energy and cloud-cost tables and the phone-energy breakdown figure."""

import shutil

import pandas as pd
import pytest

from ciarsim.report import build_report
from ciarsim.report.energy import energy_blocks
from ciarsim.report.load import load_results


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("energy-report") / "run"
    shutil.copytree(results_dir, root)
    return root, build_report(root)


def test_report_has_energy_and_cloud_cost_tables_and_the_breakdown(report):
    root, md = report
    text = md.read_text()
    assert "Energy per image on the phone" in text and "Cloud cost per image" in text
    assert "](figures/energy_breakdown.png)" in text
    assert (root / "figures" / "energy_breakdown.png").stat().st_size > 1000
    tex = (root / "tables.tex").read_text()
    assert "tab:energy" in tex and "tab:cloud-cost" in tex


def test_energy_table_rows_are_the_results_means(results_dir):
    res = load_results(results_dir)
    (energy, cloud), figs = energy_blocks(res)
    df = pd.read_parquet(results_dir / "results.parquet")
    first = df[(df.point == df.point.iloc[0]) & (df.policy == "ciar")]
    row = next(r for r in energy.rows if r[len(res.swept)] == "ciar")
    device, radio, tail, total = row[len(res.swept) + 1:]
    assert device == pytest.approx(first.energy_device_j.mean())
    assert radio == pytest.approx(first.energy_radio_j.mean()) and 0 < tail < radio
    assert total == pytest.approx(device + radio)
    assert len(energy.rows) == len(cloud.rows) == df.groupby(["point", "policy"]).ngroups
    assert [f.name for f in figs] == ["energy_breakdown"]


def test_old_results_without_energy_columns_get_no_energy_part(results_dir, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(results_dir, root)
    df = pd.read_parquet(root / "results.parquet").drop(columns=["energy_radio_j"])
    df.to_parquet(root / "results.parquet")
    assert energy_blocks(load_results(root)) == ([], [])
