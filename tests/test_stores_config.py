from pathlib import Path

import pytest

from catalogue import Catalogue
from stores.config import StoresError, demo_layout, load_stores, with_database


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stores.toml"
    path.write_text(text)
    return path


GOOD = """
[stores.main]
kind = "postgres"
dsn = "postgresql://u@db.internal/main"
categories = ["profile", "identifiers", "professional", "preferences", "provided", "sensitive",
              "payment", "device", "web_analytics", "geolocation"]
[stores.files]
kind = "media"
path = "media"
categories = ["recordings"]
"""


def test_a_good_file_maps_every_category(tmp_path: Path, catalogue: Catalogue) -> None:
    config = load_stores(write(tmp_path, GOOD))
    config.check_covers(catalogue.keys)
    assert config.store_of("payment").dsn == "postgresql://u@db.internal/main"
    assert config.store_of("recordings").path == (tmp_path / "media").resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[stores.a\n", "stores.toml: not valid TOML"),
        ("[stores.a]\nkind='redis'\ncategories=['profile']", "stores.a.kind must be one of"),
        ("[stores.a]\nkind='postgres'\ndsn='mysql://x'\ncategories=['profile']", "dsn must be"),
        (
            "[stores.a]\nkind='postgres'\ndsn='postgresql://x/y'\ncolour=1\ncategories=['x']",
            "unknown key 'colour'",
        ),
        ("[other]\nx=1", "unknown key 'other'"),
        ("[stores.a]\nkind='media'\ncategories=['recordings']", "path must name a folder"),
    ],
)
def test_a_broken_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StoresError) as info:
        load_stores(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_category_without_a_store_is_named(tmp_path: Path, catalogue: Catalogue) -> None:
    config = load_stores(write(tmp_path, GOOD.replace('"payment", ', "")))
    with pytest.raises(StoresError, match="category 'payment' has no store"):
        config.check_covers(catalogue.keys)


def test_an_unknown_category_is_named(tmp_path: Path, catalogue: Catalogue) -> None:
    config = load_stores(write(tmp_path, GOOD.replace('"payment"', '"payment", "horoscope"')))
    with pytest.raises(StoresError, match="'horoscope' is not in the catalogue"):
        config.check_covers(catalogue.keys)


def test_demo_layout_uses_separate_databases(tmp_path: Path, catalogue: Catalogue) -> None:
    config = demo_layout("postgresql://postgres@/postgres?host=/tmp/s", tmp_path, "dsar")
    config.check_covers(catalogue.keys)
    dsns = {s.dsn for s in config.stores if s.kind == "postgres"}
    assert dsns == {
        "postgresql://postgres@/dsar_accounts?host=/tmp/s",
        "postgresql://postgres@/dsar_billing?host=/tmp/s",
        "postgresql://postgres@/dsar_analytics?host=/tmp/s",
    }
    assert with_database("postgresql://u:p@h:5/a?sslmode=require", "b") == (
        "postgresql://u:p@h:5/b?sslmode=require"
    )
