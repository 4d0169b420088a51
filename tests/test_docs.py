"""Docs are part of the product: every setting and category is documented."""

import re
from pathlib import Path

from catalogue import Catalogue


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
