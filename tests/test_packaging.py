"""Packaging: a plain test install stays light, while CI still installs Ray and runs its test."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ray_is_its_own_extra_and_ci_installs_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    assert not any(dep.startswith("ray") for dep in extras["test"])
    assert any(dep.startswith("ray") for dep in extras["ray"])
    markers = project["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("ray:") for m in markers)
    assert "pip install -q -e '.[test,ray]'" in (ROOT / ".ci" / "run").read_text()


def test_scipy_is_a_core_dependency():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(dep.startswith("scipy") for dep in deps)
