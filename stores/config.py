"""The stores file, format 2 (CONTRACT.md, "The stores file"): the company's systems as they are.

Three kinds of section: `[stores.NAME]` (a PostgreSQL or MySQL database, or a folder of files),
`[keys.NAME]` (the values that identify a person in each system, found from the anchor), and
`[categories.KEY]` (where each category of the catalogue lives, and which column holds each
field), plus `[search.email]` for support. Everything here is checked without connecting to
anything; `stores.registry` checks tables and columns against the live databases at start-up.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from catalogue import Catalogue

KINDS = ("postgres", "mysql", "files")
# A category whose records are files has exactly these fields (the catalogue's recordings).
FILE_FIELDS = frozenset({"file_name", "media_type", "bytes", "recorded_at"})
TABLE_KINDS = ("postgres", "mysql")
# Migration sets `dsar migrate` may apply to a store (the demo company's own databases).
MIGRATION_SETS = ("app", "analytics", "billing", "crm")
DSN_SCHEMES = {"postgres": ("postgres://", "postgresql://"), "mysql": ("mysql://",)}

# Identifiers come from this file and end up in SQL: they must be plain names, quoted anyway.
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_FORMAT_1_HINT = (
    "format 1 (categories listed under each store) is no longer read: add `format = 2`, "
    "describe the person's keys under [keys.*] and each category under [categories.*] "
    "(docs/STORES.md, 'From format 1')"
)


class StoresError(Exception):
    """A stores file that cannot be used; one line naming the file, the section and the problem."""


Match = tuple[tuple[str, str], ...]  # (column, key name) pairs, ANDed


@dataclass(frozen=True, slots=True)
class StoreConfig:
    name: str
    kind: str
    dsn: str = ""
    path: Path | None = None
    migrations: str | None = None

    @property
    def is_table_store(self) -> bool:
        return self.kind in TABLE_KINDS


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """A person's key in one system: `column` of `table`, on rows that `match` keys known."""

    name: str
    store: str
    table: str
    column: str
    match: Match = ()
    anchor: bool = False


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """How support finds a person by e-mail: exact, trimmed, case-insensitive."""

    store: str
    table: str
    column: str
    anchor: str


@dataclass(frozen=True, slots=True)
class CategoryConfig:
    key: str
    store: str
    table: str = ""
    match: Match = ()
    order: tuple[str, ...] = ()
    fields: Mapping[str, str] | None = None  # catalogue field -> column
    pattern: str = ""

    def column(self, field: str) -> str:
        assert self.fields is not None
        return self.fields[field]

    @property
    def pattern_keys(self) -> tuple[str, ...]:
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.pattern) if name)


@dataclass(frozen=True, slots=True)
class StoresConfig:
    stores: tuple[StoreConfig, ...]
    keys: tuple[KeyConfig, ...]  # in resolution order: the anchor first
    categories: Mapping[str, CategoryConfig]
    search: SearchConfig | None
    source: str

    @property
    def anchor(self) -> KeyConfig:
        return self.keys[0]

    def store(self, name: str) -> StoreConfig:
        for s in self.stores:
            if s.name == name:
                return s
        raise KeyError(name)

    def store_of(self, category: str) -> StoreConfig:
        return self.store(self.categories[category].store)

    def check_covers(self, catalogue: Catalogue) -> None:
        """Every category and field of the catalogue is mapped, and nothing unknown is."""
        src = self.source
        for key in self.categories:
            if key not in catalogue.keys:
                raise StoresError(f"{src}: categories.{key}: not a category of the catalogue")
        for cat in catalogue:
            mapped = self.categories.get(cat.key)
            if mapped is None:
                raise StoresError(
                    f"{src}: categories.{cat.key}: missing (every category needs one)"
                )
            store = self.store(mapped.store)
            is_files = {f.name for f in cat.fields} == FILE_FIELDS
            if store.is_table_store == is_files:
                raise StoresError(
                    f"{src}: categories.{cat.key}.store: '{store.name}' holds "
                    f"{'tables' if store.is_table_store else 'files'}, and this category's "
                    f"records are {'files' if is_files else 'rows'}"
                )
            if not store.is_table_store:
                continue
            assert mapped.fields is not None
            names = {f.name for f in cat.fields}
            for name in mapped.fields:
                if name not in names:
                    raise StoresError(
                        f"{src}: categories.{cat.key}.fields: '{name}' is not a field of "
                        f"the category"
                    )
            for f in cat.fields:
                if f.name not in mapped.fields:
                    raise StoresError(
                        f"{src}: categories.{cat.key}.fields: field '{f.name}' has no column"
                    )
            if (cat.paged or cat.time_field) and not mapped.order:
                raise StoresError(
                    f"{src}: categories.{cat.key}.order: needed (a time column, then a unique "
                    f"one) for a category with many records"
                )
            # A withheld value (CCPA regulations §7024(d)) must never be read: an `order`
            # column travels in page cursors, a `match` column in key values.
            withheld = {mapped.fields[f.name] for f in cat.withheld_fields}
            for part, columns in (("order", mapped.order), ("match", [c for c, _ in mapped.match])):
                for column in columns:
                    if column in withheld:
                        raise StoresError(
                            f"{src}: categories.{cat.key}.{part}: '{column}' holds a withheld "
                            f"field, whose value is never read"
                        )


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name (keeps host, port, socket query)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def load_stores(
    path: Path, *, overrides: Mapping[str, Mapping[str, str]] | None = None
) -> StoresConfig:
    """Reads and checks a stores file; `overrides` replaces store settings (the demo's DSNs)."""
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StoresError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise StoresError(f"{name}: not valid TOML ({exc})") from None
    return parse_stores(data, name, path.parent, overrides or {})


def parse_stores(
    data: Mapping[str, Any], src: str, base: Path, overrides: Mapping[str, Mapping[str, str]]
) -> StoresConfig:
    fmt = data.get("format")
    if fmt != 2:
        if fmt is None or fmt == 1:
            raise StoresError(f"{src}: {_FORMAT_1_HINT}")
        raise StoresError(f"{src}: format must be 2")
    unknown = set(data) - {"format", "stores", "keys", "search", "categories"}
    if unknown:
        raise StoresError(f"{src}: unknown section '{sorted(unknown)[0]}'")
    stores = tuple(
        _store(src, n, {**_table(src, f"stores.{n}", raw), **overrides.get(n, {})}, base)
        for n, raw in _tables(src, "stores", data.get("stores")).items()
    )
    names = {s.name for s in stores}
    keys = _ordered_keys(
        src, [_key(src, n, raw, names) for n, raw in _tables(src, "keys", data.get("keys")).items()]
    )
    known_keys = {k.name for k in keys}
    search = _search(src, data.get("search"), names)
    categories = {
        k: _category(src, k, raw, stores, known_keys)
        for k, raw in _tables(src, "categories", data.get("categories")).items()
    }
    for key in keys:
        _check_store_kind(src, f"keys.{key.name}", key.store, stores)
    if search is not None:
        _check_store_kind(src, "search.email", search.store, stores)
    return StoresConfig(stores, tuple(keys), categories, search, src)


def _tables(src: str, section: str, raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise StoresError(f"{src}: no [{section}.<name>] tables")
    return raw


def _table(src: str, section: str, raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise StoresError(f"{src}: {section} must be a table")
    return raw


def _only(src: str, section: str, raw: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(raw) - set(allowed)
    if unknown:
        raise StoresError(f"{src}: {section} has unknown key '{sorted(unknown)[0]}'")


def _text(src: str, section: str, raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise StoresError(f"{src}: {section}.{key} must be a non-empty string")
    return value


def _ident(src: str, section: str, value: str, *, dotted: bool = False) -> str:
    parts = value.split(".") if dotted else [value]
    if len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise StoresError(
            f"{src}: {section}: '{value}' is not a plain name"
            + (" (table or schema.table)" if dotted else "")
        )
    return value


def _store(src: str, name: str, raw: Mapping[str, Any], base: Path) -> StoreConfig:
    section = f"stores.{name}"
    _ident(src, section, name)
    _only(src, section, raw, ("kind", "dsn", "path", "migrations"))
    kind = raw.get("kind")
    if kind not in KINDS:
        raise StoresError(f"{src}: {section}.kind must be one of {', '.join(KINDS)}")
    migrations = raw.get("migrations")
    if migrations is not None and migrations not in MIGRATION_SETS:
        raise StoresError(f"{src}: {section}.migrations must be one of {', '.join(MIGRATION_SETS)}")
    if kind == "files":
        folder = _text(src, section, raw, "path")
        return StoreConfig(name, kind, path=(base / folder).resolve())
    dsn = raw.get("dsn")
    if not isinstance(dsn, str) or not dsn.startswith(DSN_SCHEMES[kind]):
        raise StoresError(f"{src}: {section}.dsn must be a {DSN_SCHEMES[kind][-1]} URL")
    return StoreConfig(name, kind, dsn=dsn, migrations=migrations)


def _match(src: str, section: str, raw: object, keys: set[str] | None) -> Match:
    if not isinstance(raw, dict) or not raw:
        raise StoresError(f'{src}: {section}.match must be a table of column = "key" pairs')
    pairs = []
    for column, key in raw.items():
        _ident(src, f"{section}.match", column)
        if not isinstance(key, str):
            raise StoresError(f"{src}: {section}.match.{column} must name a key")
        if keys is not None and key not in keys:
            raise StoresError(f"{src}: {section}.match.{column}: unknown key '{key}'")
        pairs.append((column, key))
    return tuple(pairs)


def _key(src: str, name: str, raw: object, stores: set[str]) -> KeyConfig:
    section = f"keys.{name}"
    _ident(src, section, name)
    raw = _table(src, section, raw)
    _only(src, section, raw, ("anchor", "store", "table", "column", "match"))
    store = _text(src, section, raw, "store")
    if store not in stores:
        raise StoresError(f"{src}: {section}.store: unknown store '{store}'")
    anchor = raw.get("anchor", False)
    if not isinstance(anchor, bool):
        raise StoresError(f"{src}: {section}.anchor must be true or false")
    table = _ident(src, section + ".table", _text(src, section, raw, "table"), dotted=True)
    column = _ident(src, section + ".column", _text(src, section, raw, "column"))
    if anchor:
        if "match" in raw:
            raise StoresError(f"{src}: {section}: the anchor is not found from other keys")
        return KeyConfig(name, store, table, column, (), True)
    return KeyConfig(name, store, table, column, _match(src, section, raw.get("match"), None))


def _ordered_keys(src: str, keys: list[KeyConfig]) -> list[KeyConfig]:
    """The keys in an order where each is found from keys before it; refuses cycles."""
    anchors = [k for k in keys if k.anchor]
    if len(anchors) != 1:
        raise StoresError(f"{src}: keys: exactly one key must have anchor = true")
    by_name = {k.name: k for k in keys}
    for k in keys:
        for column, used in k.match:
            if used not in by_name:
                raise StoresError(f"{src}: keys.{k.name}.match.{column}: unknown key '{used}'")
    ordered = [anchors[0]]
    done = {anchors[0].name}
    pending = [k for k in keys if not k.anchor]
    while pending:
        ready = [k for k in pending if all(used in done for _, used in k.match)]
        if not ready:
            stuck = pending[0]
            raise StoresError(
                f"{src}: keys.{stuck.name}: cannot be found from the anchor "
                f"(a cycle through {', '.join(sorted(k.name for k in pending))})"
            )
        for k in ready:
            ordered.append(k)
            done.add(k.name)
        pending = [k for k in pending if k.name not in done]
    return ordered


def _search(src: str, raw: object, stores: set[str]) -> SearchConfig | None:
    if raw is None:
        return None
    raw = _table(src, "search", raw)
    _only(src, "search", raw, ("email",))
    email = _table(src, "search.email", raw.get("email"))
    section = "search.email"
    _only(src, section, email, ("store", "table", "column", "anchor"))
    store = _text(src, section, email, "store")
    if store not in stores:
        raise StoresError(f"{src}: {section}.store: unknown store '{store}'")
    return SearchConfig(
        store,
        _ident(src, section + ".table", _text(src, section, email, "table"), dotted=True),
        _ident(src, section + ".column", _text(src, section, email, "column")),
        _ident(src, section + ".anchor", _text(src, section, email, "anchor")),
    )


def _category(
    src: str, key: str, raw: object, stores: tuple[StoreConfig, ...], keys: set[str]
) -> CategoryConfig:
    section = f"categories.{key}"
    raw = _table(src, section, raw)
    store_name = _text(src, section, raw, "store")
    store = next((s for s in stores if s.name == store_name), None)
    if store is None:
        raise StoresError(f"{src}: {section}.store: unknown store '{store_name}'")
    if store.kind == "files":
        _only(src, section, raw, ("store", "pattern"))
        pattern = _text(src, section, raw, "pattern")
        cat = CategoryConfig(key, store_name, pattern=pattern)
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise StoresError(f"{src}: {section}.pattern must stay inside the store's folder")
        try:
            used = cat.pattern_keys
        except ValueError:
            raise StoresError(f"{src}: {section}.pattern is not a valid pattern") from None
        if not used:
            raise StoresError(f"{src}: {section}.pattern must use a key, such as {{user_id}}")
        # `{user_id}*` would give user 1 the folders of users 10 and 1001: a key is a whole
        # part of the path, never next to a wildcard.
        for part in pattern.split("/"):
            if "{" in part and not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_$]*\}", part):
                raise StoresError(
                    f"{src}: {section}.pattern: a key must be a whole part of the path "
                    f"(such as calls/{{user_id}}/*), not '{part}'"
                )
        for name in used:
            if name not in keys:
                raise StoresError(f"{src}: {section}.pattern: unknown key '{name}'")
        return cat
    _only(src, section, raw, ("store", "table", "match", "order", "fields"))
    table = _ident(src, section + ".table", _text(src, section, raw, "table"), dotted=True)
    match = _match(src, section, raw.get("match"), keys)
    order = raw.get("order", [])
    if not isinstance(order, list) or not all(isinstance(c, str) for c in order):
        raise StoresError(f"{src}: {section}.order must be a list of columns")
    for column in order:
        _ident(src, section + ".order", column)
    fields = raw.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise StoresError(f"{src}: {section}.fields must map each field to a column")
    for field, column in fields.items():
        if not isinstance(column, str):
            raise StoresError(f"{src}: {section}.fields.{field} must name a column")
        _ident(src, f"{section}.fields.{field}", column)
    return CategoryConfig(key, store_name, table, match, tuple(order), dict(fields))


def _check_store_kind(src: str, section: str, store: str, stores: tuple[StoreConfig, ...]) -> None:
    if not next(s for s in stores if s.name == store).is_table_store:
        raise StoresError(f"{src}: {section}.store: '{store}' holds files, not tables")
