"""Docs are part of the product: every setting and category is documented."""

import re
from pathlib import Path

from catalogue import Catalogue
from schema.scopes import FIELD_SCOPES


def test_every_setting_is_in_the_readme(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    source = (repo_root / "api" / "settings.py").read_text()
    names = set(re.findall(r'"(DSAR_[A-Z_]+)"', source))
    assert names, "no settings found: the pattern is stale"
    for name in sorted(names):
        assert f"`{name}`" in readme, f"{name} is not documented in README.md"


def test_every_category_is_in_the_readme(repo_root: Path, catalogue: Catalogue) -> None:
    readme = (repo_root / "README.md").read_text()
    for key in catalogue.keys:
        assert f"`{key}`" in readme, f"category {key} is not in README.md"


def test_the_configuration_section_names_every_scope_and_what_it_opens(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    section = readme.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    rows = {
        m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z]+:[a-z]+)` \|(.*)$", section, re.M)
    }
    for field, scope in FIELD_SCOPES.items():
        assert scope in rows, f"scope {scope} is not in the README's configuration section"
        assert f"`{field}`" in rows[scope], f"{field} is not in the row of {scope}"
