"""The package's layout rules: one job per file, private names stay private, no command code
in domain modules.

These are read from the source with :mod:`ast`, so they fail the moment a change breaks them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "analytics"
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: The synthetic-practice generator is allowed to stay long: it is one recipe, read top to bottom.
LONG_MODULES_ALLOWED = {"datasets.py"}
MAX_MODULE_LINES = 1300
MAX_FUNCTION_LINES = 150
#: The 835 reader's segment loop is one hot loop; splitting it costs speed on every file.
LONG_FUNCTIONS_ALLOWED = {("remittance/reader.py", "_feed"), ("remittance/reader.py", "feed")}


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _tree(path: Path, package_sources) -> ast.Module:
    """The parsed module, from the session's one read of the sources (``package_sources``)."""
    return package_sources[path][1]


def test_the_package_has_sources():
    assert len(SOURCES) > 20


def test_no_module_imports_another_modules_private_names(package_sources):
    offences = []
    for path in SOURCES:
        for node in ast.walk(_tree(path, package_sources)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("analytics"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offences.append(f"{_rel(path)}: from {node.module} import {', '.join(private)}")
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_argparse_lives_only_in_cli(package_sources):
    offences = []
    for path in SOURCES:
        if _rel(path).startswith("cli/"):
            continue
        for node in ast.walk(_tree(path, package_sources)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "argparse" for n in names):
                offences.append(_rel(path))
    assert not offences, f"argparse outside analytics/cli/: {sorted(set(offences))}"


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_module_size(path):
    if path.name in LONG_MODULES_ALLOWED:
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_rel(path)} has {lines} lines; split it by job"


def test_function_size(package_sources):
    offences = []
    for path in SOURCES:
        for node in ast.walk(_tree(path, package_sources)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and (_rel(path), node.name) not in LONG_FUNCTIONS_ALLOWED:
                    offences.append(f"{_rel(path)}:{node.lineno} {node.name} ({length} lines)")
    assert not offences, "functions over the size limit:\n" + "\n".join(offences)
