"""The package stays easy to read: short functions, tests that mirror the rooms."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sinet_deploy"
#: A function a reader can hold in mind (docstring and option declarations included).
MAX_FUNCTION_LINES = 150


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def test_no_function_is_longer_than_a_reader_can_hold() -> None:
    long = [
        f"{name} ({n} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, n in _functions(path)
        if n > MAX_FUNCTION_LINES
    ]
    assert not long, long


def test_tests_mirror_the_rooms() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").is_file()}
    assert folders <= rooms, f"test folders without a room: {sorted(folders - rooms)}"
