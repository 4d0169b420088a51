"""`dsar stores check`: every section of the stores file against the live systems, one line each.

`stores.registry` refuses a wrong file at start-up with its first problem; this reports all of
them, and what start-up does not look at: an index for every `match` column (without one, each
request scans the table), key values that cannot be cast to a column's type, and store roles
that could write. Only the catalogs are read (tables, columns, indexes, privileges): nothing of
any person's data, and nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from catalogue import Catalogue
from stores.config import CategoryConfig, KeyConfig, Match, StoreConfig, StoresConfig
from stores.introspect import Relation, Schema, read_files, read_schema
from stores.mapping import base_type, compatible, tables_of

LEVELS = ("ok", "warn", "error")
FULL_SCAN = "a full scan per person"

_TEXT = frozenset(
    {"text", "character varying", "character", "varchar", "char", "citext"}
    | {"tinytext", "mediumtext", "longtext"}
)
_INTEGER = frozenset({"bigint", "integer", "smallint", "int", "tinyint", "mediumint"})


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # ok | warn | error
    section: str  # keys.X, search.email, categories.Y, stores.Z
    message: str


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warn")

    def of(self, section: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.section == section)

    def lines(self) -> list[str]:
        width = max((len(f.section) for f in self.findings), default=0)
        return [f"{f.level:<5}  {f.section:<{width}}  {f.message}" for f in self.findings]

    def summary(self) -> str:
        sections = len({f.section for f in self.findings})
        errors, warnings = len(self.errors), len(self.warnings)
        return (
            f"{sections} sections: {errors} error{'s' * (errors != 1)}, "
            f"{warnings} warning{'s' * (warnings != 1)}"
        )


@dataclass(slots=True)
class _Section:
    """The findings of one section; its `ok` line comes last, and only if nothing failed."""

    name: str
    problems: list[Finding] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.problems.append(Finding("error", self.name, message))

    def warn(self, message: str) -> None:
        self.problems.append(Finding("warn", self.name, message))

    def done(self, ok: str) -> list[Finding]:
        if any(p.level == "error" for p in self.problems):
            return self.problems
        return [Finding("ok", self.name, ok), *self.problems]


async def check(config: StoresConfig, catalogue: Catalogue) -> Report:
    schemas: dict[str, Schema] = {}
    out: list[Finding] = []
    # Every store at once: one that does not answer costs its connect timeout only once.
    read = await asyncio.gather(*(_read_store(s, config) for s in config.stores))
    for store, result in zip(config.stores, read, strict=True):
        section = _Section(f"stores.{store.name}")
        if isinstance(result, str):  # a files store: what is wrong with its folder
            if result:
                section.error(result)
            out += section.done(f"files: folder {store.path} is readable")
            continue
        if result.failure:
            section.error(f"{store.kind}: {result.failure}")
        else:
            schemas[store.name] = result
            _check_role(section, result)
        out += section.done(f"{store.kind}: connected as {result.role}" + _role_note(result))
    checks = _Checks(config, catalogue, schemas)
    for key in config.keys:
        out += checks.key(key)
    if config.search is not None:
        out += checks.search()
    for cat in catalogue:
        out += checks.category(cat.key)
    for name in config.categories:
        if name not in catalogue.keys:
            out.append(Finding("error", f"categories.{name}", "not a category of the catalogue"))
    return Report(tuple(out))


async def _read_store(store: StoreConfig, config: StoresConfig) -> Schema | str:
    if store.kind == "files":
        assert store.path is not None
        return await read_files(store.path)
    return await read_schema(store.kind, store.dsn, tables_of(store.name, config))


def _check_role(section: _Section, schema: Schema) -> None:
    # Store connections should be read-only roles: dsar never writes to a company's system,
    # and a role that can write turns any mistake (or any breach of dsar) into lost data.
    if schema.read_only or not schema.privileges_checked:
        return
    if schema.superuser:
        section.warn(
            f"role {schema.role} is a superuser: it can write; connect with a role that can "
            f"only read (GRANT SELECT)"
        )
        return
    writable = sorted(r.name for r in schema.relations.values() if r.writable)
    if writable:
        section.warn(
            f"role {schema.role} can write to {', '.join(writable)} (INSERT, UPDATE, DELETE or "
            f"TRUNCATE): connect with a role that can only read (GRANT SELECT)"
        )


def _role_note(schema: Schema) -> str:
    if schema.read_only:
        return " (a read-only replica)"
    if not schema.privileges_checked:
        return " (write privileges are checked on PostgreSQL stores only)"
    return ""


def _family(sql_type: str) -> str:
    name = base_type(sql_type)
    if name in _TEXT:
        return "text"
    if name in _INTEGER:
        return "integer"
    return name


class _Checks:
    def __init__(
        self, config: StoresConfig, catalogue: Catalogue, schemas: Mapping[str, Schema]
    ) -> None:
        self.config = config
        self.catalogue = catalogue
        self.schemas = schemas
        self.key_types: dict[str, str] = {}  # key name -> its column's type, where found
        self.keys = {k.name: k for k in config.keys}

    def _relation(
        self, section: _Section, store: str, table: str, columns: Iterable[tuple[str, str]]
    ) -> Relation | None:
        """The table, if it and every (what, column) are there and readable; errors if not."""
        schema = self.schemas.get(store)
        if schema is None:
            section.error(f"not checked: store '{store}' could not be read")
            return None
        rel = schema.relations.get(table)
        if rel is None:
            section.error(f"table '{table}' not found in store '{store}'")
            return None
        for what, column in columns:
            if column not in rel.columns:
                section.error(f"column '{column}' ({what}) not found in {store}.{table}")
            elif column in rel.unreadable:
                section.error(
                    f"column '{column}' ({what}) of {store}.{table} cannot be read by role "
                    f"{schema.role} (GRANT SELECT)"
                )
        return rel

    def _index(self, section: _Section, store: str, rel: Relation, lead: str, why: str) -> None:
        if rel.kind == "table" and lead not in rel.leads:
            section.warn(f"no index starts with {lead} on {store}.{rel.name}: {why}")

    def _match(self, section: _Section, store: str, rel: Relation, match: Match) -> str:
        """Index and type of each `match` column; returns how the rows are found, for `ok`."""
        for column, key in match:
            if column not in rel.columns:
                continue
            self._index(section, store, rel, column, FULL_SCAN)
            self._cast(section, f"match.{column}", rel.columns[column], key)
        return " and ".join(f"{column} = {key}" for column, key in match)

    def _cast(self, section: _Section, what: str, column_type: str, key: str) -> None:
        # Key values travel as text and are cast to the column's type in SQL: a text column
        # takes anything, but a value that is not, say, a bigint can find no row there.
        key_type = self.key_types.get(key)
        if key_type is None or _family(column_type) in ("text", _family(key_type)):
            return
        source = self.keys[key]
        section.warn(
            f"{what} is {column_type} and key '{key}' is {key_type} "
            f"({source.store}.{source.table}.{source.column}): a value of '{key}' that is not "
            f"a {base_type(column_type)} is left out, and no record is found through it"
        )

    @staticmethod
    def _view_note(rel: Relation) -> str:
        if rel.kind == "view":
            return "; a view: indexes are those of its tables: not checked"
        if rel.kind == "foreign table":
            return "; a foreign table: indexes are those of its server: not checked"
        return ""

    def key(self, key: KeyConfig) -> list[Finding]:
        section = _Section(f"keys.{key.name}")
        columns = [("column", key.column), *((f"match.{c}", c) for c, _ in key.match)]
        rel = self._relation(section, key.store, key.table, columns)
        if rel is None or key.column not in rel.columns:
            return section.done("")
        self.key_types[key.name] = rel.columns[key.column]
        where = f"{key.store}.{key.table}.{key.column} ({rel.columns[key.column]})"
        if key.anchor:
            self._index(section, key.store, rel, key.column, "a full scan per anchor look-up")
            return section.done(f"{where}: the anchor" + self._view_note(rel))
        found = self._match(section, key.store, rel, key.match)
        # Resolving a key also asks whether each value leads to someone else (GDPR Art. 15(4)).
        self._index(section, key.store, rel, key.column, "a full scan per value (shared check)")
        return section.done(f"{where}, found by {found}" + self._view_note(rel))

    def search(self) -> list[Finding]:
        search = self.config.search
        assert search is not None
        section = _Section("search.email")
        columns = [("column", search.column), ("anchor", search.anchor)]
        rel = self._relation(section, search.store, search.table, columns)
        if rel is None or any(c not in rel.columns for _, c in columns):
            return section.done("")
        # Searches compare `lower(column)`: on PostgreSQL only an index on that expression
        # serves them. MariaDB has no such index, so there is nothing to advise there.
        if self.schemas[search.store].kind == "postgres":
            lead = f"lower({search.column})"
            self._index(section, search.store, rel, lead, "a full scan per search")
        self._cast(section, "anchor", rel.columns[search.anchor], self.config.anchor.name)
        return section.done(
            f"{search.store}.{search.table}.{search.column}, anchor from {search.anchor}"
            + self._view_note(rel)
        )

    def category(self, key: str) -> list[Finding]:
        section = _Section(f"categories.{key}")
        mapped = self.config.categories.get(key)
        if mapped is None:
            section.error("missing: every category of the catalogue needs a section")
            return section.done("")
        store = self.config.store(mapped.store)
        if not store.is_table_store:
            return section.done(f"files of store '{store.name}' matching {mapped.pattern}")
        return self._table_category(section, store, mapped)

    def _table_category(
        self, section: _Section, store: StoreConfig, mapped: CategoryConfig
    ) -> list[Finding]:
        cat = self.catalogue.category(mapped.key)
        fields = dict(mapped.fields or {})
        names = {f.name for f in cat.fields}
        for name in fields:
            if name not in names:
                section.error(f"fields.{name}: not a field of the category")
        for f in cat.fields:
            if f.name not in fields:
                section.error(f"fields.{f.name}: no column (every field needs one)")
        if (cat.paged or cat.time_field) and not mapped.order:
            section.error("order: needed (a time column, then a unique one)")
        columns = [
            *((f"fields.{n}", c) for n, c in fields.items() if n in names),
            *((f"match.{c}", c) for c, _ in mapped.match),
            *(("order", c) for c in mapped.order),
        ]
        rel = self._relation(section, store.name, mapped.table, columns)
        if rel is None:
            return section.done("")
        for f in cat.fields:
            column = fields.get(f.name)
            sql_type = rel.columns.get(column or "")
            # Withheld fields are only asked whether they are held: any type will do.
            if column and sql_type and not f.withheld and not compatible(f.type, sql_type):
                section.error(
                    f"fields.{f.name}: column '{column}' is {sql_type}, which cannot be read "
                    f"as {f.type}"
                )
        found = self._match(section, store.name, rel, mapped.match)
        if mapped.order and rel.kind == "table" and not rel.unique_within(mapped.order):
            section.warn(
                f"order: no unique index on columns of ({', '.join(mapped.order)}): records "
                f"sharing a position may be skipped or repeated between pages"
            )
        return section.done(
            f"{store.name}.{mapped.table}: {len(fields)} fields, types compatible; "
            f"found by {found}" + self._view_note(rel)
        )
