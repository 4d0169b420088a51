"""The stores file, format 2: the demo company's file reads, and each kind of mistake is refused
with one line naming the file and the section."""

from pathlib import Path

import pytest

from catalogue import Catalogue
from stores.config import StoresError, load_stores, with_database
from stores.deployment import DEMO_STORES, demo_layout


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stores.toml"
    path.write_text(text)
    return path


DEMO = DEMO_STORES.read_text()


def test_the_demo_file_is_a_complete_worked_example(tmp_path: Path, catalogue: Catalogue) -> None:
    config = load_stores(write(tmp_path, DEMO))
    config.check_covers(catalogue)
    assert config.anchor.name == "user_id"
    # Keys come in an order where each is found from keys before it.
    assert [k.name for k in config.keys] == ["user_id", "email", "customer", "anonymous_id"]
    assert config.store_of("payment").dsn.endswith("/billing")
    assert config.store_of("recordings").path == (tmp_path / "media").resolve()
    assert config.categories["web_analytics"].match == (("anonymous_id", "anonymous_id"),)
    assert config.search is not None and config.search.anchor == "id"


def test_demo_layout_uses_separate_databases(tmp_path: Path, catalogue: Catalogue) -> None:
    config = demo_layout("postgresql://postgres@/postgres?host=/tmp/s", tmp_path, "dsar")
    config.check_covers(catalogue)
    dsns = {s.dsn for s in config.stores if s.kind == "postgres"}
    assert dsns == {
        with_database("postgresql://postgres@/postgres?host=/tmp/s", f"dsar_{name}")
        for name in ("app", "analytics", "billing", "crm")
    }
    with_mysql = demo_layout("postgresql://p@h/p", tmp_path, "dsar", "mysql://root@127.0.0.1:3306")
    assert with_mysql.store("crm").kind == "mysql"
    assert with_mysql.store("crm").dsn == "mysql://root@127.0.0.1:3306/dsar_crm"


def _edit(old: str, new: str) -> str:
    assert old in DEMO, old
    return DEMO.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[stores.a\n", "stores.toml: not valid TOML"),
        (
            "[stores.a]\nkind='postgres'\ndsn='postgresql://x/y'\ncategories=['profile']",
            "stores.toml: format 1 (categories listed under each store) is no longer read: "
            "add `format = 2`",
        ),
        (_edit('kind = "files"', 'kind = "redis"'), "stores.media.kind must be one of"),
        (
            _edit('dsn = "postgresql://dsar_reader@crm', 'dsn = "mysql://dsar_reader@crm'),
            "stores.crm.dsn must be a postgresql:// URL",
        ),
        (_edit('store = "billing"', 'store = "ledger"'), "categories.payment.store: unknown store"),
        (
            _edit("[keys.user_id]\nanchor = true", "[keys.user_id]\nmatch = { id = 'email' }"),
            "keys: exactly one key must have anchor = true",
        ),
        (
            DEMO.replace(
                'column = "email"\nmatch = { id = "user_id" }',
                'column = "email"\nmatch = { id = "customer" }',
            ).replace(
                'column = "billing_customer"\nmatch = { id = "user_id" }',
                'column = "billing_customer"\nmatch = { id = "email" }',
            ),
            "keys.email: cannot be found from the anchor (a cycle through customer, email)",
        ),
        (
            _edit('column = "billing_customer"', 'column = "billing_customer"\ncolour = 1'),
            "stores.toml: keys.customer has unknown key 'colour'",
        ),
        (
            _edit('match = { customer = "customer" }', 'match = { customer = "iban" }'),
            "categories.payment.match.customer: unknown key 'iban'",
        ),
        (
            _edit('pattern = "users/{user_id}/*"', 'pattern = "../{user_id}/*"'),
            "categories.recordings.pattern must stay inside the store's folder",
        ),
        (
            _edit('pattern = "users/{user_id}/*"', 'pattern = "users/{uid}/*"'),
            "categories.recordings.pattern: unknown key 'uid'",
        ),
        (
            _edit('pattern = "users/{user_id}/*"', 'pattern = "users/{user_id}*/*"'),
            "categories.recordings.pattern: a key must be a whole part of the path",
        ),
        (
            _edit('pattern = "users/{user_id}/*"', 'pattern = "flat/*{user_id}.wav"'),
            "categories.recordings.pattern: a key must be a whole part of the path",
        ),
        (
            _edit('table = "bank_accounts"', 'table = "bank_accounts; DROP TABLE x"'),
            "categories.payment.table: 'bank_accounts; DROP TABLE x' is not a plain name",
        ),
        (
            _edit(
                '[categories.recordings]\nstore = "media"', '[categories.recordings]\nstore = "app"'
            ),
            "categories.recordings has unknown key 'pattern'",
        ),
        (
            _edit('[search.email]\nstore = "app"', '[search.email]\nstore = "media"'),
            "search.email.store: 'media' holds files, not tables",
        ),
    ],
)
def test_a_broken_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StoresError) as info:
        load_stores(write(tmp_path, text))
    assert message in str(info.value)
    assert str(info.value).startswith("stores.toml: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'fields = { id = "id", account_holder = "holder_name", ',
            'fields = { id = "id", ',
            "categories.payment.fields: field 'account_holder' has no column",
        ),
        (
            'fields = { company_name = "company", ',
            'fields = { company_name = "company", star_sign = "sign", ',
            "categories.professional.fields: 'star_sign' is not a field of the category",
        ),
        ('order = ["ts", "id"]\n', "", "categories.web_analytics.order: needed"),
        (
            'order = ["collected_at", "id"]',
            'order = ["doc_number", "id"]',
            "categories.sensitive.order: 'doc_number' holds a withheld field",
        ),
        (
            'match = { customer = "customer" }',
            'match = { account_number = "customer" }',
            "categories.payment.match: 'account_number' holds a withheld field",
        ),
        (
            '[categories.recordings]\nstore = "media"\npattern = "users/{user_id}/*"',
            '[categories.recordings]\nstore = "app"\ntable = "users"\nmatch = { id = "user_id" }'
            '\nfields = { file_name = "username", media_type = "email", bytes = "id", '
            'recorded_at = "signed_up_at" }',
            "categories.recordings.store: 'app' holds tables, and this category's records",
        ),
        (
            "[categories.professional]",
            "[categories.horoscope]\nstore = 'crm'\ntable = 't'\nmatch = { e = 'email' }\n"
            "fields = { x = 'y' }\n\n[categories.professional]",
            "categories.horoscope: not a category of the catalogue",
        ),
    ],
)
def test_the_catalogue_must_be_covered(
    tmp_path: Path, catalogue: Catalogue, old: str, new: str, message: str
) -> None:
    config = load_stores(write(tmp_path, _edit(old, new)))
    with pytest.raises(StoresError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.check_covers(catalogue)


def test_a_category_without_a_section_is_named(tmp_path: Path, catalogue: Catalogue) -> None:
    text = DEMO[: DEMO.index("[categories.recordings]")]
    config = load_stores(write(tmp_path, text))
    with pytest.raises(StoresError, match=r"categories\.recordings: missing"):
        config.check_covers(catalogue)


def test_with_database_keeps_host_and_query() -> None:
    url = "postgresql://u:p@h:5433/postgres?sslmode=require"
    assert with_database(url, "x") == "postgresql://u:p@h:5433/x?sslmode=require"
