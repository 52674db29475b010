"""The code stays readable: no function in the library is longer than a screen of code.

Docstrings do not count: a constructor documents every prop, and that text is the API
reference. What counts is the code a reader has to hold in their head.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "trading_constructs"
MAX_CODE_LINES = 80


def _code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = set(range(function.lineno, (function.end_lineno or function.lineno) + 1))
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            lines -= set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return len(lines)


def long_functions(root: Path, limit: int) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                count = _code_lines(node)
                if count > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({count})")
    return found


def test_no_function_has_more_than_80_lines_of_code() -> None:
    assert long_functions(SRC, MAX_CODE_LINES) == []


def test_the_count_leaves_docstrings_out_and_would_catch_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    (tmp_path / "long.py").write_text(f'def f():\n    """Doc\n\n    more doc."""\n{body}\n')
    (tmp_path / "short.py").write_text('def g():\n    """' + "doc\n" * 100 + '"""\n    return 1\n')
    assert long_functions(tmp_path, MAX_CODE_LINES) == ["long.py:1 f (82)"]


# A context flag of an app (``-c certificate_arn=...``), the example app or a cdk.json.
_APP_ADVICE = re.compile(r"(^|[\s(])-c \w+=|example app|the example's|cdk\.json")


def test_no_message_gives_advice_only_an_app_could_follow() -> None:
    """Warnings and errors speak to library users: they name the prop to set, never a flag
    of one app. Docstrings (expression statements) may describe the example."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "handlers" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        documentation = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in documentation
                and _APP_ADVICE.search(node.value)
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value[:60]!r}")
    assert found == []
