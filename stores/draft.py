"""`dsar stores draft STORE`: a first `[categories.*]` draft from a live database's schema.

Columns are matched to catalogue fields by name (the same name, a usual synonym, or a name that
contains the field's) and by type (`stores.mapping.compatible`). Tables come before views: a
draft points at where the data lives, and a view that covers more is named in a comment. A
category's fields are listed most telling first (a profile's name before its address), so a
table matching earlier fields ranks higher. Whatever a person must decide carries a `# TODO`.
Only the catalogs are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from catalogue import Catalogue, Category, Field
from stores.config import StoresError
from stores.introspect import Relation, read_schema
from stores.mapping import compatible

# Names a company commonly gives the catalogue's fields; each set is one meaning.
SYNONYMS: tuple[frozenset[str], ...] = tuple(
    frozenset(s.split())
    for s in (
        "first_name given_name firstname forename",
        "last_name family_name lastname surname",
        "email email_address mail",
        "phone phone_number telephone mobile",
        "postal_code zip zip_code postcode",
        "region state province",
        "country country_code",
        "occurred_at ts timestamp event_time occurred",
        "page_url url page path",
        "created_at created inserted_at signed_up_at registered_at",
        "updated_at updated modified_at changed_at last_modified",
        "submitted_at received_at sent_at",
        "ip_address ip ip_addr remote_addr",
        "cookie_id anonymous_id",
        "action event_type event",
        "title subject",
        "language locale lang",
        "time_zone timezone tz",
        "company_name company employer organization organisation",
        "account_holder holder_name account_name",
        "marketing_emails newsletter",
        "advertising_cookies ad_cookies",
        "do_not_sell_or_share do_not_sell",
        "kind doc_type type",
        "value doc_number number",
    )
)
EXACT, SYNONYM, PARTLY = 3, 2, 1
_NOTES = {SYNONYM: "a usual synonym", PARTLY: "TODO: check: the names are only partly alike"}
_PERSON_TABLES = frozenset("users user customers customer accounts account people members".split())
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def similarity(field: str, column: str) -> int:
    f, c = field.lower(), column.lower()
    if f == c:
        return EXACT
    if any(f in s and c in s for s in SYNONYMS):
        return SYNONYM
    if f != "id" and (c.endswith("_" + f) or c.startswith(f + "_")):
        return PARTLY
    return 0


@dataclass(frozen=True, slots=True)
class Candidate:
    relation: Relation
    fields: dict[str, tuple[str, int]]  # field -> (column, similarity), in catalogue order
    weight: int

    @property
    def telling(self) -> int:
        """Fields matched, `id` aside: every table has one."""
        return sum(1 for f in self.fields if f != "id")


def candidate(category: Category, rel: Relation) -> Candidate:
    pairs = sorted(
        (
            (-score, i, f.name, column)
            for i, f in enumerate(category.fields)
            for column, sql_type in rel.columns.items()
            if _PLAIN.fullmatch(column)
            and (score := similarity(f.name, column))
            and (f.withheld or compatible(f.type, sql_type))
        ),
    )
    chosen: dict[str, tuple[str, int]] = {}
    used: set[str] = set()
    for score, _, name, column in pairs:
        if name not in chosen and column not in used:
            chosen[name] = (column, -score)
            used.add(column)
    ordered = {f.name: chosen[f.name] for f in category.fields if f.name in chosen}
    size = len(category.fields)
    weight = sum(size - i for i, f in enumerate(category.fields) if f.name in chosen)
    return Candidate(rel, ordered, weight)


def _eligible(category: Category, c: Candidate) -> bool:
    # A category with many records over time needs its time column: a table without one is
    # not where those records are.
    if category.time_field and category.time_field not in c.fields:
        return False
    return c.telling >= max(2, -(-len(category.fields) // 2))


def _best(
    category: Category, relations: Iterable[Relation]
) -> tuple[Candidate | None, list[Candidate]]:
    found = [c for r in relations if _eligible(category, c := candidate(category, r))]
    tables = [c for c in found if c.relation.kind == "table"]
    pool = tables or found
    best = max(pool, key=lambda c: (c.weight, -len(c.relation.columns)), default=None)
    return best, [c for c in found if c is not best]


async def draft(dsn: str, catalogue: Catalogue, store_name: str) -> str:
    kind = "mysql" if dsn.startswith("mysql://") else "postgres"
    schema = await read_schema(kind, dsn, None)
    if schema.failure:
        raise StoresError(f"store '{store_name}': {kind}: {schema.failure}")
    relations = [r for r in schema.relations.values() if _PLAIN.fullmatch(r.name.replace(".", ""))]
    out = [
        f"# A draft for store '{store_name}' ({kind}), read from its schema by `dsar stores "
        "draft`.",
        "# Review every TODO, then copy the sections you keep into the stores file and run",
        "# `dsar stores check` (docs/STORES.md).",
    ]
    missing = []
    for category in catalogue:
        best, others = _best(category, relations)
        if best is None:
            missing.append(category.key)
            continue
        out += ["", *_section(category, store_name, best, others)]
    if missing:
        out += ["", f"# No table here looks like: {', '.join(missing)} (another store's, perhaps)."]
    return "\n".join(out) + "\n"


def _section(category: Category, store: str, best: Candidate, others: list[Candidate]) -> list[str]:
    rel = best.relation
    lines = [f"[categories.{category.key}]", f'store = "{store}"', f'table = "{rel.name}"']
    column, key, indexed = _match(best)
    lines.append(
        f'match = {{ {column} = "{key}" }}   # TODO: the key whose values find the person\'s '
        f"rows (indexed here: {', '.join(indexed) or 'nothing'})"
    )
    if category.paged or category.time_field:
        lines.append(_order(category, best))
    lines += ["", f"[categories.{category.key}.fields]   # catalogue field = column"]
    for name, (col, score) in best.fields.items():
        note = _NOTES.get(score)
        lines.append(f'{name} = "{col}"' + (f"   # {note}" if note else ""))
    unmapped = [f for f in category.fields if f.name not in best.fields]
    if unmapped:
        lines.append(_unmapped(unmapped, rel, others))
    for other in others:
        if other.relation.kind != "table" and len(other.fields) > len(best.fields):
            lines.append(
                f"# The view {other.relation.name} has columns for {len(other.fields)} of the "
                f"{len(category.fields)} fields: map it instead if it is the category's own view."
            )
    return lines


def _match(best: Candidate) -> tuple[str, str, list[str]]:
    """A guess at the `match` column and its key: a person's id column, indexed if possible."""
    rel = best.relation
    table = rel.name.rsplit(".", 1)[-1]
    indexed = [c for c in rel.columns if c in rel.leads]
    unique = {c for u in rel.unique if len(u) == 1 for c in u}
    for column in indexed:
        if column.endswith("_id"):
            return column, column, indexed
    if "id" in indexed and table in _PERSON_TABLES:
        return "id", table.removesuffix("s") + "_id", indexed
    for column in sorted(indexed, key=lambda c: (c in unique, indexed.index(c))):
        if column != "id":
            return column, _key_name(column), indexed
    for column in rel.columns:  # no index to go by: a name that says it
        if column.endswith("_id") or "email" in column:
            return column, _key_name(column), indexed
    return "TODO", "TODO", indexed


def _key_name(column: str) -> str:
    return "email" if "email" in column else column


def _order(category: Category, best: Candidate) -> str:
    time = best.fields.get(category.time_field or "", ("", 0))[0]
    unique = [c for u in best.relation.unique if len(u) == 1 for c in u]
    last = best.fields["id"][0] if "id" in best.fields else (unique[0] if unique else "")
    columns = [c for c in (time, last) if c]
    return (
        f"order = [{', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}]   "
        "# TODO: check: a time, then a unique column (keyset paging)"
    )


def _unmapped(fields: list[Field], rel: Relation, others: list[Candidate]) -> str:
    names = ", ".join(f.name for f in fields)
    line = f"# TODO: no column of {rel.name} looks like {names}"
    holders = [
        (o.relation.name, [o.fields[f.name][0] for f in fields if f.name in o.fields])
        for o in others
        if o.relation.kind == "table"
    ]
    holders = [(name, cols) for name, cols in holders if cols]
    if holders:
        where = "; ".join(f"{name} has {', '.join(cols)}" for name, cols in holders)
        line += f" ({where}): a view joining the tables can map every field"
    return line + " (docs/STORES.md, 'Views')"
