"""The tree shows the architecture: imports run one way, and only suites/, zoo/ and backends/ name a suite or a
backend (help texts and docstrings aside); everything else asks the registries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from opbench.backends import EXPORT_FORMATS, REGISTRY
from opbench.suite import suites

PACKAGE = Path(__file__).resolve().parents[1] / "opbench"
SPECIFIC = ("suites", "zoo", "backends")  # the folders whose modules are about one suite, model or backend


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every opbench module the file imports: at module level, under TYPE_CHECKING and inside functions alike; a
    name imported from a package counts as its submodule when it is one (`from opbench.measure import path`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{head}.{base}" if base else head
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def is_face(path: Path) -> bool:
    """A package __init__ that defines nothing, only hands names on: importing through it is no edge of its own."""
    if path.name != "__init__.py":
        return False
    tree = ast.parse(path.read_text())
    return not any(isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) for n in tree.body)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    faces = {name for name, path in known.items() if is_face(path)}
    graph = {name: imported(path, name, known) for name, path in known.items() if name not in faces}
    # an edge into a face is an edge into every module the face imports (what the name really comes from)
    for name, targets in graph.items():
        for face in targets & faces:
            targets |= imported(known[face], face, known) - {name}
        graph[name] = targets - faces
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_opbench_has_no_import_circle_counting_every_import():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_imports_inside_functions_and_under_type_checking(tmp_path):
    """The rule above could not fail if the finder missed deferred imports: a constructed circle closed only
    through TYPE_CHECKING and a function-local import is found."""
    known = {"opbench.a": tmp_path / "a.py", "opbench.b": tmp_path / "b.py"}
    known["opbench.a"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from opbench.b import x\n")
    known["opbench.b"].write_text("def f():\n    from opbench import a\n")
    graph = {name: imported(path, name, known) for name, path in known.items()}
    assert cycles(graph) == [["opbench.a", "opbench.b"]]


def strings_in_code(path: Path) -> set[str]:
    """String constants that are not docstrings, `help=` texts or attribute names."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module | ast.AsyncFunctionDef) and ast.get_docstring(
            node
        ):
            skip.add(id(node.body[0].value))
        if isinstance(node, ast.keyword) and node.arg in ("help", "description"):
            skip.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            skip.update(id(n) for n in node.args[1:2])  # an attribute's name (a stage's `blocks`), not a suite's
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in skip}  # fmt: skip


# words that are a suite's key too but mean something else where they stand, each with what it means there
HOMONYMS = {("lookup/predict.py", "models"): "a column of the prediction summary: how many models were validated"}
GENERIC = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in SPECIFIC)


@pytest.mark.parametrize("path", GENERIC, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_generic_module_names_no_suite_and_no_backend(path):
    names = set(REGISTRY) | set(suites()) | set(EXPORT_FORMATS)
    found = {n for n in strings_in_code(path) & names if (str(path.relative_to(PACKAGE)), n) not in HOMONYMS}
    assert not found, f"{path.relative_to(PACKAGE)} names {sorted(found)}"


def test_the_generic_modules_are_found_by_glob_not_by_a_list():
    """A module added anywhere outside suites/, zoo/ and backends/ is checked without anyone listing it."""
    names = {str(p.relative_to(PACKAGE)) for p in GENERIC}
    assert {"cli.py", "verdict.py", "report/__init__.py", "analysis/compare.py"} <= names
    assert not any(name.startswith(SPECIFIC) for name in names)


def test_judging_imports_no_presentation_and_figures_import_no_judged_object():
    """report/ shows what analysis/ judged, never the other way round; a figure draws the series it is handed."""
    graph = import_graph()
    judging = {t for name, targets in graph.items() if name.startswith("opbench.analysis.") for t in targets}
    assert not {t for t in judging if t.startswith("opbench.report")}
    figures = graph["opbench.report.figures"]
    assert not {t for t in figures if t.startswith(("opbench.report", "opbench.analysis", "opbench.verdict"))}
