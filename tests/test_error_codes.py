"""One documented list of `extensions.code`: the README's table is `schema.error_codes.CODES`, and
every code the code base can emit is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from schema.error_codes import CODES

ROOT = Path(__file__).resolve().parents[1]
CODE_SHAPE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


def _emitted(tree: ast.AST) -> set[str]:
    """String constants in the places a code is given: `code = "X"` (a class attribute or a
    variable), `code="X"` (a keyword), `{"code": "X"}`, and `error(message, "X")` (the
    GraphQL over HTTP helper), and what a function named `classify` returns."""
    found: set[str] = set()

    def const(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                const(node.value)
        elif isinstance(node, ast.keyword) and node.arg == "code":
            const(node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    const(value)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "error" and len(node.args) >= 2:
                const(node.args[1])
        elif isinstance(node, ast.FunctionDef) and node.name == "classify":
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return):
                    const(inner.value)
    return found


def emitted_codes() -> dict[str, set[str]]:
    codes: dict[str, set[str]] = {}
    for package in ("api", "schema"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for code in _emitted(ast.parse(path.read_text())):
                codes.setdefault(code, set()).add(str(path.relative_to(ROOT)))
    return codes


def test_every_emitted_code_is_listed() -> None:
    codes = emitted_codes()
    assert {c for c in codes if not CODE_SHAPE.match(c)} == set()
    unlisted = {c: sorted(where) for c, where in codes.items() if c not in CODES}
    assert unlisted == {}, "add each to schema/error_codes.py and the README's table"
    # The scan sees the codes of every layer (a check that finds nothing would pass anyway).
    assert {"BAD_USER_INPUT", "INVALID_TOKEN", "INVALID_CURSOR", "BAD_REQUEST"} <= set(codes)


def test_every_listed_code_is_emitted_somewhere() -> None:
    assert set(CODES) - set(emitted_codes()) == set()


def test_the_readme_lists_exactly_these_codes() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \|", section, re.MULTILINE)
    assert rows == list(CODES)
