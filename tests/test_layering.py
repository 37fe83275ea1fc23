"""The layering of docs/architecture.md, checked by import-linter (contracts in pyproject.toml):
cli -> report | emulate -> runner -> policies | sim -> nn | scenario | trace, no import back up,
and each heavy library only in its layer (torch: nn, policies; simpy: sim; matplotlib: report;
typer, rich: cli; yaml: scenario)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports({config!r}))"


def _lint(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN.format(config=str(config))], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_import_contracts_hold():
    res = _lint(ROOT / "pyproject.toml", ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_a_layer_violation_is_caught(tmp_path):
    """The contracts can fail: a sim module importing the policies breaks two of them."""
    pkg = tmp_path / "ciarsim"
    for path in (ROOT / "ciarsim").rglob("*.py"):
        dest = pkg / path.relative_to(ROOT / "ciarsim")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text())
    (pkg / "sim" / "leak.py").write_text("from ciarsim.policies import engine\nimport matplotlib\n")
    res = _lint(ROOT / "pyproject.toml", tmp_path)
    assert res.returncode != 0
    assert "ciarsim.sim.leak -> ciarsim.policies" in res.stdout and "matplotlib only in report BROKEN" in res.stdout
