"""The house rules the code keeps by itself: short functions and classes, no import circle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"engine": "ovlabel.engine", "pipelines": "ovlabel.pipelines", "schemas": "ovlabel.schemas"}
MAX_CLASS_LINES = 120
MAX_FUNCTION_LINES = 50


def _sources() -> dict[str, Path]:
    """Module name -> file, for every module of engine/, pipelines/ and schemas/."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join((package, *parts))] = path
    return found


def _spans(kind: type) -> list[tuple[str, int]]:
    spans = []
    for name, path in _sources().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, kind):
                spans.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1))
    return spans


def test_no_class_is_a_whole_floor() -> None:
    long = [(where, n) for where, n in _spans(ast.ClassDef) if n > MAX_CLASS_LINES]
    assert not long, long


def test_no_function_needs_scrolling() -> None:
    long = [(where, n) for kind in (ast.FunctionDef, ast.AsyncFunctionDef) for where, n in _spans(kind)
            if n > MAX_FUNCTION_LINES]
    assert not long, long


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """ovlabel modules ``module`` imports, at the top or inside functions alike."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # 'from pkg import module' imports that module; 'from pkg import name' imports pkg itself
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                     for a in node.names]
        out.update(n for n in names if n in known and n != module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of ``graph`` (module -> modules it imports), or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_circle() -> None:
    sources = _sources()
    known = set(sources)
    graph = {m: _imports(m, p, known) for m, p in sources.items()}
    assert not _cycle(graph), " -> ".join(_cycle(graph))


@pytest.mark.parametrize("graph, circle", [({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]), ({"a": {"b"}, "b": set()}, [])])
def test_the_circle_finder_finds_circles(graph: dict[str, set[str]], circle: list[str]) -> None:
    assert _cycle(graph) == circle
