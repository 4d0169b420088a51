"""`schema.graphql` is committed; it must be what the code builds (regenerate: python -m schema)."""

from pathlib import Path

from catalogue import Catalogue
from schema import build_schema


def test_committed_sdl_is_current(repo_root: Path, catalogue: Catalogue) -> None:
    committed = (repo_root / "schema.graphql").read_text(encoding="utf-8")
    assert committed == build_schema(catalogue).as_str() + "\n", "run: python -m schema"


def test_every_category_is_a_subject_field_with_a_description(catalogue: Catalogue) -> None:
    sdl = build_schema(catalogue).as_str()
    subject = sdl[sdl.index("type Subject {") :]
    subject = subject[: subject.index("\n}")]
    for key in catalogue.keys:
        head, *rest = key.split("_")
        assert f"  {head + ''.join(p.title() for p in rest)}" in subject
    assert '"""' in subject
