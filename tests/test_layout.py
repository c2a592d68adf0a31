"""The generic layers name no suite and no backend: they ask the registries (help texts and docs aside)."""

from __future__ import annotations

import ast
from pathlib import Path

from opbench.backends import REGISTRY
from opbench.suite import suites

PACKAGE = Path(__file__).resolve().parents[1] / "opbench"
GENERIC = [
    *("report/__init__.py", "report/build.py", "report/figures.py", "report/extras.py", "export.py", "importer.py"),
    *("cli.py", "verdict.py", "suite.py", "compare.py", "pytest_plugin.py", "results.py"),
]


def strings_in_code(path: Path) -> set[str]:
    """String constants that are not docstrings and not `help=` texts."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module | ast.AsyncFunctionDef) and ast.get_docstring(
            node
        ):
            skip.add(id(node.body[0].value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            skip.update(id(n) for n in ast.walk(node.value))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in skip}  # fmt: skip


def test_generic_modules_branch_on_no_suite_or_backend_name():
    names = set(REGISTRY) | set(suites()) | {"coreml", "onnx"}
    for module in GENERIC:
        found = strings_in_code(PACKAGE / module) & names
        assert not found, f"{module} names {sorted(found)}"
