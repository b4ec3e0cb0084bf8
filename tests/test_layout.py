"""The layout's import rules: engine/ never imports Beam, schemas/ only pyarrow, pipelines/ no model internals."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_engine_never_imports_beam() -> None:
    offenders = {f for f, names in imported_modules("engine").items() if "apache_beam" in names}
    assert not offenders


def test_schemas_import_only_pyarrow() -> None:
    allowed = {"__future__", "pyarrow", "pathlib", "typing"}
    for path, names in imported_modules("schemas").items():
        assert names <= allowed, (path, names - allowed)


@pytest.mark.parametrize("forbidden", ["torch", "segment_anything", "open_clip", "spacy"])
def test_pipelines_do_not_reach_into_models(forbidden: str) -> None:
    offenders = {f for f, names in imported_modules("pipelines").items() if forbidden in names}
    assert not offenders


def test_library_code_logs_instead_of_printing() -> None:
    for folder in ("engine", "pipelines", "schemas"):
        for path in (ROOT / folder).rglob("*.py"):
            calls = [n for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
            assert not calls, path
