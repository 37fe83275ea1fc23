"""``ciarsim emulate`` without the privileges it needs: one clear error, exit code 4."""

from __future__ import annotations

from typer.testing import CliRunner

SCENARIO = """
name: emu-tiny
workload: {images: 2, token_grid: 4}
network: {capacity: constant, uplink_mbps: 5, downlink_mbps: 10, rtt_ms: 60}
policies:
  - {name: base}
"""


def test_cli_emulate_without_net_admin_fails_clearly(tmp_path, monkeypatch):
    import ciarsim.emulate.session as session
    from ciarsim.cli import app

    monkeypatch.setattr(session.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(session, "_has_cap", lambda bit: False)
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    res = CliRunner().invoke(app, ["emulate", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 4
    assert "root or CAP_NET_ADMIN" in res.output and "Traceback" not in res.output


def test_cli_emulate_rejects_what_it_cannot_reproduce(tmp_path):
    from ciarsim.cli import app

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("capacity: constant", "capacity: random"))
    res = CliRunner().invoke(app, ["emulate", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code in (2, 4)
    assert "network.capacity" in res.output


def test_cli_emulate_names_an_unknown_congestion_control(tmp_path, monkeypatch):
    import ciarsim.emulate.api as api
    from ciarsim.cli import app

    monkeypatch.setattr(api, "check_host", lambda: None)  # privileges are not what is tested
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    res = CliRunner().invoke(app, ["emulate", str(path), "--out", str(tmp_path / "o"),
                                   "--congestion", "nosuch"])  # fmt: skip
    assert res.exit_code == 4
    assert "--congestion" in res.output and "nosuch" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o" / "emulation.csv").exists()
