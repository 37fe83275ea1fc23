"""README.md says only true things: its scenario snippet matches the shipped file, and every
command it shows exists with the options it shows, on scenarios that load."""

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ciarsim.cli import app
from ciarsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _subset(part, whole, where: str) -> None:
    """Every key and value of ``part`` is in ``whole`` (policies: each one matches by label)."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), where
        for k, v in part.items():
            assert k in whole, f"{where}.{k}: not in the shipped file"
            _subset(v, whole[k], f"{where}.{k}")
    elif isinstance(part, list) and part and isinstance(part[0], dict) and "name" in part[0]:
        for item in part:
            match = [w for w in whole if w.get("name") == item["name"]]
            assert match, f"{where}: no policy {item['name']} in the shipped file"
            _subset(item, match[0], f"{where}[{item['name']}]")
    elif isinstance(part, float) or isinstance(whole, float):
        assert float(part) == pytest.approx(float(whole)), f"{where}: {part} != {whole}"
    else:
        assert part == whole, f"{where}: README {part!r}, shipped {whole!r}"


def test_the_scenario_snippet_is_the_shipped_4g_file():
    (snippet,) = _blocks("yaml")
    shown = yaml.safe_load(snippet)
    assert shown["name"] == "4g" and "`scenarios/4g.yaml`" in README
    resolved = load_scenario(ROOT / "scenarios" / "4g.yaml").model_dump(mode="json")
    resolved["models"]["checkpoints"] = "../models/shapes-256"  # the loader makes paths absolute
    _subset(shown, resolved, "4g")
    assert "sweep" not in shown or shown["sweep"] == resolved["sweep"]


def _commands() -> list[list[str]]:
    """``ciarsim ...`` commands of the README's bash blocks and inline examples (comments and
    bracketed placeholders removed)."""
    lines = [ln for b in _blocks("bash") for ln in b.splitlines()]
    lines += re.findall(r"`(ciarsim run [^`]+)`", README.replace("\n", " "))
    cmds: list[str] = []
    for ln in lines:
        ln = ln.split(" # ")[0].split("&&")[-1].strip()
        if ln.startswith("ciarsim "):
            cmds.append(ln)
        elif ln.startswith("[--") and cmds:  # a continuation line of the command above
            cmds[-1] += " " + ln
    return [shlex.split(c.replace("|", " ")) for c in cmds]


def test_every_readme_command_exists_with_its_options():
    cmds = _commands()
    assert len(cmds) >= 12
    for words in cmds:
        path = [w for w in words[1:3] if re.fullmatch(r"[a-z]+", w) and w.islower()]
        sub = path[:2] if path[:1] == ["scenarios"] else path[:1]
        res = runner.invoke(app, [*sub, "--help"], terminal_width=200)
        assert res.exit_code == 0, f"`{' '.join(words)}`: no command `ciarsim {' '.join(sub)}`"
        for opt in (w.strip("[]").split("=")[0] for w in words if w.lstrip("[").startswith("--")):
            assert opt in res.output, f"`{' '.join(words)}`: {opt} is not an option of {sub}"


def test_every_readme_example_scenario_loads_with_its_overrides():
    runs = [w for w in _commands() if w[1] == "run" and w[2].endswith(".yaml")]
    assert len(runs) >= 3
    for words in runs:
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        load_scenario(ROOT / words[2], sets)


def test_install_commands_name_real_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for found in re.findall(r"pip install -e '\.\[([a-z,]+)\]'", README):
        assert set(found.split(",")) <= set(extras), found
