"""Rules of the code itself: the formatter decides the layout, and functions stay small.

A function of daaf/ holds at most MAX_LINES lines (its def line to its last line) and
MAX_PARAMETERS parameters (self and cls not counted); a click command takes one parameter per
option, so only the line limit applies to it. EXCEPTIONS names the functions let off, each with
its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "daaf"
FORMATTED = ("daaf", "tests", "scripts", "benchmarks")
MAX_LINES = 60
MAX_PARAMETERS = 8

EXCEPTIONS = {
    "daaf/evaluation/rerank.py::_nearest": (
        "dense numeric kernel: one pass over blocks of the distance matrix, clearer whole"
    ),
    "daaf/utils/config_fields.py::setting": (
        "a dataclasses.field-like factory: each keyword is one optional bound of a config value"
    ),
}


def _python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if ".venv" not in path.parts)


def _is_click_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether a decorator makes the function a click command or group."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("command", "group"):
            return True
    return False


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    arguments = node.args
    names = [arg.arg for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
    names += [arg.arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    return [name for name in names if name not in ("self", "cls")]


def oversized_functions(paths: list[Path]) -> dict[str, str]:
    """``path::function`` -> what is over the limits, for every function of the modules at
    ``paths`` (methods and nested functions included) outside EXCEPTIONS."""
    found = {}
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            key = f"{path.relative_to(REPO).as_posix()}::{node.name}"
            lines = node.end_lineno - node.lineno + 1
            parameters = 0 if _is_click_command(node) else len(_parameters(node))
            problems = [f"{lines} lines"] * (lines > MAX_LINES)
            problems += [f"{parameters} parameters"] * (parameters > MAX_PARAMETERS)
            if problems and key not in EXCEPTIONS:
                found[key] = ", ".join(problems)
    return found


@pytest.mark.parametrize("folder", FORMATTED)
def test_no_fmt_skip(folder):
    """Layout is the formatter's: a call it makes tall asks for a dataclass, not an exception."""
    marker = "fmt: " + "skip"
    offending = [
        path.relative_to(REPO).as_posix()
        for path in _python_files(REPO / folder)
        if marker in path.read_text()
    ]
    assert offending == []


def _parts() -> dict[str, list[Path]]:
    """The package's modules by subpackage; ``daaf`` holds the top-level modules."""
    parts = {"daaf": sorted(PACKAGE.glob("*.py"))}
    for folder in sorted(path for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()):
        parts[f"daaf.{folder.name}"] = _python_files(folder)
    return parts


@pytest.mark.parametrize("part", sorted(_parts()))
def test_functions_are_small(part):
    assert oversized_functions(_parts()[part]) == {}


def test_exceptions_are_still_needed():
    """An exception whose function is gone or back within the limits is removed from the list."""
    for key in EXCEPTIONS:
        path, name = key.split("::")
        tree = ast.parse((REPO / path).read_text())
        functions = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
        ]
        assert functions, f"{key}: no such function"
        assert any(
            node.end_lineno - node.lineno + 1 > MAX_LINES or len(_parameters(node)) > MAX_PARAMETERS
            for node in functions
        ), f"{key} is within the limits: remove its exception"
