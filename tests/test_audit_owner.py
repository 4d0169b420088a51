"""Audit rows are written by the domain only: a resolver calls a domain function, which writes
the row in the transaction of what it records. Every function of `schema/` is read, nested ones
too. The HTTP edge (`api/`) writes no `allowed` row either; it records only the refusals it makes
itself before the schema runs (a scope it lacks), through `domain.audit.denied`."""

from __future__ import annotations

import ast
from pathlib import Path

# The writers of `domain.audit`, by layer; reads (`access_log`, `verify`) are fine anywhere.
WRITERS = {"schema": frozenset({"record", "denied"}), "api": frozenset({"record"})}
# SQL that appends to the log without going through `domain.audit`.
SQL = ("audit_append", "into audit_log")


def _audit_names(tree: ast.Module, writes: frozenset[str]) -> tuple[set[str], set[str]]:
    """Names bound to the `domain.audit` module, and to its writers, anywhere in the module."""
    modules, writers = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if node.module == "domain" and alias.name == "audit":
                    modules.add(alias.asname or "audit")
                elif node.module == "domain.audit" and alias.name in writes:
                    writers.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name == "domain.audit" and a.asname)
    return modules, writers


def _what(
    node: ast.AST, modules: set[str], writers: set[str], writes: frozenset[str]
) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module == "domain.audit":
        if any(a.name in writes for a in node.names):
            return "imports an audit writer"
    elif isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in writers:
            return f"calls {f.id}"
        if isinstance(f, ast.Attribute) and f.attr in writes:
            base = ast.unparse(f.value)
            if base in modules or base == "domain.audit":
                return f"calls {base}.{f.attr}"
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        if any(s in node.value.lower() for s in SQL):
            return "writes the audit log in SQL"
    return None


def _writes(path: Path, root: Path, writes: frozenset[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules, writers = _audit_names(tree, writes)
    found: list[str] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        what = _what(node, modules, writers, writes) if function is not None else None
        if what is not None:
            found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)} {function} {what}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return found


def _violations(root: Path) -> list[str]:
    return [
        v
        for layer, writes in WRITERS.items()
        for path in sorted((root / layer).rglob("*.py"))
        for v in _writes(path, root, writes)
    ]


def test_no_resolver_writes_the_audit_log_itself(repo_root: Path) -> None:
    assert _violations(repo_root) == []


def test_the_check_sees_each_way_of_writing(tmp_path: Path) -> None:
    (tmp_path / "schema").mkdir()
    (tmp_path / "api").mkdir()
    (tmp_path / "schema" / "a.py").write_text(
        "from domain import audit\n"
        "async def resolver(info):\n"
        "    await audit.record(db, outcome='denied')\n"
        "    entries = await audit.access_log(db, sid)\n"
    )
    (tmp_path / "schema" / "b.py").write_text(
        "def outer():\n"
        "    async def inner(info):\n"
        "        from domain.audit import record\n"
        "        await db.fetchval('SELECT audit_append($1)')\n"
        "    return inner\n"
    )
    assert _violations(tmp_path) == [
        "schema/a.py:3 resolver calls audit.record",
        "schema/b.py:3 inner imports an audit writer",
        "schema/b.py:4 inner writes the audit log in SQL",
    ]
    (tmp_path / "api" / "c.py").write_text(
        "import domain.audit as log\n"
        "async def route(request):\n"
        "    await log.denied(db)\n"
        "    await log.record(db, outcome='allowed')\n"
    )
    assert _violations(tmp_path)[-1:] == ["api/c.py:4 route calls log.record"]
