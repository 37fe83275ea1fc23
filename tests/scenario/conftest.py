"""Helpers for scenario tests: write a YAML file and load it, or get the error text."""

from pathlib import Path

import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario import load_scenario

@pytest.fixture
def write(tmp_path, monkeypatch):
    """write(text, name="s.yaml") -> relative path of the file, with the cwd at tmp_path."""
    monkeypatch.chdir(tmp_path)

    def _write(text: str, name: str = "s.yaml") -> str:
        Path(name).write_text(text, encoding="utf-8")
        return name

    return _write


@pytest.fixture
def error_of(write):
    """error_of(text, overrides=()) -> the ScenarioError message loading it raises."""

    def _error(text: str, overrides=(), name: str = "bad.yaml") -> str:
        path = write(text, name)
        with pytest.raises(ScenarioError) as info:
            load_scenario(path, overrides)
        return str(info.value)

    return _error
