"""Imports go one way, `api → schema → domain → exporters → stores → catalogue`, and the web
frameworks stop at the edge. Every import of every module counts, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS = ("api", "schema", "domain", "exporters", "stores", "catalogue")
# Which layers may import each framework.
FRAMEWORKS = {
    "starlette": {"api"},
    "jinja2": {"api"},
    "uvicorn": {"api"},
    "strawberry": {"api", "schema"},
    "graphql": {"api", "schema"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _violations(root: Path) -> list[str]:
    out: list[str] = []
    for rank, layer in enumerate(LAYERS):
        for path in sorted((root / layer).rglob("*.py")):
            for line, module in _imports(path):
                top = module.split(".")[0]
                where = f"{path.relative_to(root)}:{line} imports {module}"
                if top in LAYERS and LAYERS.index(top) < rank:
                    out.append(f"{where}: {top} is above {layer}")
                if top in FRAMEWORKS and layer not in FRAMEWORKS[top]:
                    out.append(f"{where}: {top} stops at {', '.join(sorted(FRAMEWORKS[top]))}")
    return out


def test_imports_only_go_down_and_frameworks_stay_at_the_edge(repo_root: Path) -> None:
    assert _violations(repo_root) == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
    (tmp_path / "stores" / "x.py").write_text("def f():\n    from api.settings import Settings\n")
    (tmp_path / "domain" / "y.py").write_text("import strawberry\n")
    assert _violations(tmp_path) == [
        "domain/y.py:1 imports strawberry: strawberry stops at api, schema",
        "stores/x.py:2 imports api.settings: api is above stores",
    ]
