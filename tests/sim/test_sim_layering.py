"""Layering: the timing layer imports no torch, plotting or CLI libraries."""

import ast
from pathlib import Path

import ciarsim.sim

FORBIDDEN = {"torch", "matplotlib", "typer", "rich"}


def test_sim_package_imports_no_forbidden_modules():
    for path in Path(ciarsim.sim.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
