"""The layer rule: web | cli -> assistant -> tools | retrieval -> tradedata -> tamga.

`lint-imports` (import-linter, configured in pyproject.toml) enforces it in `make lint` and
`make test`; these tests run it on the real tree, and on a copy with one import that breaks
the rule, to show that the check fails when it should.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("web", "cli", "assistant", "tools", "retrieval", "tradedata", "tamga")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Which project packages each package may import (itself included).
ALLOWED = {
    "tamga": {"tamga"},
    "tradedata": {"tradedata", "tamga"},
    "tools": {"tools", "tradedata", "tamga"},
    "retrieval": {"retrieval", "tradedata", "tamga"},
    "assistant": {"assistant", "tools", "retrieval", "tradedata", "tamga"},
}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(root),
                                                       "PATH": "/usr/bin:/bin"})


def _project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every project import in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                found.append((node.lineno, top))
    return found


def test_the_tree_keeps_the_layer_rule() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    wrong = [f"{path.relative_to(REPO)}:{line} imports {top}"
             for path in sorted((REPO / package).rglob("*.py"))
             for line, top in _project_imports(path) if top not in ALLOWED[package]]
    assert wrong == []


def test_a_lower_layer_importing_the_assistant_fails_the_build(tmp_path: Path) -> None:
    for name in (*PACKAGES, "pyproject.toml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tmp_path / name)
    bad = tmp_path / "tools" / "sql.py"
    bad.write_text(bad.read_text(encoding="utf-8") + "\nfrom assistant.core import Assistant\n",
                   encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "tools.sql -> assistant.core" in result.stdout
    # the copy is what was checked, not the installed tree
    assert _lint(REPO).returncode == 0
