"""`records_sql` reads value by value and merges the walks: the same rows, in the same order, as
one `= any(...)` and a sort (`any_sql`), for every PostgreSQL category of the demo stores."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from catalogue import Catalogue
from stores.mapping import Fields, Person
from stores.postgres import MERGED_VALUES, MappedCategory, PostgresStore, quote
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import Connection, snapshot
from tests.exporters.conftest import new_subject

Rows = list[tuple[Any, ...]]


async def _rows(conn: Connection, sql: str, args: list[Any]) -> Rows:
    return [tuple(r) for r in await conn.fetch(sql, *args)]


async def _read(
    conn: Connection,
    cat: MappedCategory,
    person: Person,
    since: datetime | None = None,
    fields: Fields | None = None,
) -> tuple[str, Rows, Rows]:
    """The statement `records_sql` builds, its rows, and the rows of `any_sql`."""
    args: list[Any] = []
    sql = cat.records_sql(person, args, since, fields)
    any_args: list[Any] = []
    old = cat.any_sql(person, any_args, since, fields)
    return sql, await _rows(conn, sql, args), await _rows(conn, old, any_args)


def _postgres(stores: Stores) -> Iterator[PostgresStore]:
    return (s for s in stores.by_name.values() if isinstance(s, PostgresStore))


async def _together(stores: Stores, catalogue: Catalogue) -> Person:
    """alice, bob (two cookie ids, one the family computer's) and a person with 700 events as
    one person: several values of every key, their records interleaved in time."""
    many = await new_subject(stores, catalogue, events=700)
    people = [await stores.person_of(s) for s in (subject_id("alice"), subject_id("bob"), many.id)]
    values: dict[str, tuple[str, ...]] = {}
    for p in people:
        assert p is not None
        for key, vs in p.values.items():
            values[key] = values.get(key, ()) + vs
    return Person("together", values)


async def test_merged_reads_give_the_rows_of_one_sorted_read(
    stores: Stores, catalogue: Catalogue
) -> None:
    """Every category with an `order`, for a person with several values of its key: merged
    (UNION ALL of ordered branches) in the export's snapshot, the same rows in the same order
    as the sorted read; also with `since` and with a subset of the fields. Categories without
    an `order` have nothing to merge and keep the one read."""
    person = await _together(stores, catalogue)
    merged = since_read = 0
    for store in _postgres(stores):
        async with snapshot(store) as snap:
            for key, cat in store.categories.items():
                sql, rows, old = await _read(snap.conn, cat, person)
                assert rows == old, key
                if not cat.order_by:
                    assert sql == cat.any_sql(person, []), key
                    continue
                assert "UNION ALL" in sql and rows, key
                merged += 1
                if cat.time_column is not None:
                    times = sorted(r[0] for r in await _rows(snap.conn, *_times(cat, person)))
                    since = times[(len(times) - 1) // 2]
                    _, later, old = await _read(snap.conn, cat, person, since=since)
                    assert later == old and len(later) < len(rows), key
                    since_read += bool(later)
                some = frozenset(f.name for f in cat.category.fields[1:3])
                _, part, old = await _read(snap.conn, cat, person, fields=some)
                assert part == old and len(part[0]) == len(some), key
    # sensitive, payment, device, web_analytics, geolocation (the CRM is MySQL in the tests)
    assert merged == 5 and since_read >= 3


def _times(cat: MappedCategory, person: Person) -> tuple[str, list[Any]]:
    """The time column of the person's records, as `since` compares it."""
    args: list[Any] = []
    where = cat.where.sql(person, args)
    sql = f"SELECT t.{quote(cat.time_column or '')} FROM {cat.table} t WHERE {where}"  # noqa: S608  # checked identifiers only
    return sql, args


async def test_no_record_is_read_twice(stores: Stores, catalogue: Catalogue) -> None:
    """A row is in one branch at most: its key column has one text, equal to at most one of the
    (deduplicated) values. So a value given twice, or a value that names the same row only
    through a cast (`01001` is user 1001 as bigint, not as text), adds no record."""
    person = await _together(stores, catalogue)
    doubled = Person(
        "doubled", {k: vs + vs + tuple("0" + v for v in vs) for k, vs in person.values.items()}
    )
    for store in _postgres(stores):
        async with snapshot(store) as snap:
            for key, cat in store.categories.items():
                _, rows, _ = await _read(snap.conn, cat, person)
                sql, twice, old = await _read(snap.conn, cat, doubled)
                assert twice == rows == old, key
                assert ("UNION ALL" in sql) == bool(cat.order_by), key


async def test_the_cap_on_merged_values(stores: Stores, catalogue: Catalogue) -> None:
    """Up to MERGED_VALUES values of the key are merged; one more and the one sorted read takes
    over, with the same rows. No value at all: the one read, and no record."""
    person = await _together(stores, catalogue)
    store = stores.postgres("web_analytics")
    cat = store.categories["web_analytics"]
    own = person.of("anonymous_id")
    assert 3 <= len(own) < MERGED_VALUES

    def padded(n: int) -> Person:
        unknown = tuple(f"no-such-cookie-{i}" for i in range(n - len(own)))
        return dataclasses.replace(person, values={**person.values, "anonymous_id": own + unknown})

    async with snapshot(store) as snap:
        _, rows, _ = await _read(snap.conn, cat, person)
        at_cap, capped, _ = await _read(snap.conn, cat, padded(MERGED_VALUES))
        past_cap, past, _ = await _read(snap.conn, cat, padded(MERGED_VALUES + 1))
        assert at_cap.count("UNION ALL") == MERGED_VALUES - 1
        assert "UNION ALL" not in past_cap
        assert rows == capped == past and len(rows) > 700
        nobody = dataclasses.replace(person, values={**person.values, "anonymous_id": ()})
        sql, none, _ = await _read(snap.conn, cat, nobody)
        assert "UNION ALL" not in sql and none == []


async def test_the_rest_of_match_is_in_every_branch(stores: Stores, catalogue: Catalogue) -> None:
    """A category matched on two columns (cookie id and session): the first is merged value by
    value, the second is ANDed inside each branch, as `page_sql` does."""
    person = await _together(stores, catalogue)
    store = stores.postgres("web_analytics")
    cat = store.categories["web_analytics"]
    match = (*cat.mapped.match, ("session_id", "session"))
    two = MappedCategory(cat.category, dataclasses.replace(cat.mapped, match=match), store.types)
    async with snapshot(store) as snap:
        _, rows, _ = await _read(snap.conn, cat, person)
        at = [f.name for f in cat.category.fields].index("session_id")
        some = sorted({r[at] for r in rows})[::3]
        sql, chosen, old = await _read(
            snap.conn, two, Person("x", {**person.values, "session": tuple(some)})
        )
    assert "UNION ALL" in sql and chosen == old
    assert chosen == [r for r in rows if r[at] in some] and 0 < len(chosen) < len(rows)


async def test_a_statement_text_is_kept_by_all_it_depends_on(
    stores: Stores, catalogue: Catalogue
) -> None:
    """`records_sql` and `page_sql` keep the texts they built (a planned document's reads are
    the same at every request): for people with other values, other positions, dates, fields
    and parameters before them, a category that kept its texts gives the same statement and
    values as one that builds every text afresh, and the texts kept are bounded."""
    from stores.postgres import TEXTS_KEPT

    person = await _together(stores, catalogue)
    store = stores.postgres("web_analytics")
    cat = store.categories["web_analytics"]
    match = (*cat.mapped.match, ("session_id", "session"))
    kept = MappedCategory(cat.category, dataclasses.replace(cat.mapped, match=match), store.types)

    def fresh() -> MappedCategory:
        return MappedCategory(kept.category, kept.mapped, store.types)

    cookies = person.of("anonymous_id")
    people = [
        Person(f"p{n}", {**person.values, "anonymous_id": cookies[:n], "session": ("s1", "s2")})
        for n in (1, 2, len(cookies))
    ]
    people.append(
        Person("many", {**people[0].values, "anonymous_id": tuple(f"x{n}" for n in range(40))})
    )
    some = frozenset(f.name for f in cat.category.fields[1:3])
    before = ["a value of another part of the statement"]

    def texts(c: Callable[[], MappedCategory], p: Person) -> list[tuple[str, list[Any]]]:
        """Every kind of statement for `p`, each from the category `c()` gives."""
        out = []
        for prefix in ([], before):
            for fields in (None, some):
                for since in (None, datetime(2026, 1, 1)):
                    args = list(prefix)
                    out.append((c().records_sql(p, args, since, fields), args))
                for after in (None, ("2026-01-01 00:00:00+00", "7"), (None, "7"), (None, None)):
                    for size in (21, 101):
                        for how in (
                            {},
                            {"ordered": True},
                            {"marks": False},
                            {"ordered": True, "marks": False},
                            {"first_values": "$9"},
                            {"first_values": "$8"},
                        ):
                            args = list(prefix)
                            page = c().page_sql(p, args, size, after, fields, **how)  # type: ignore[arg-type]
                            out.append((page, args))
        return out

    for _ in range(2):  # the second time round, every text comes from those kept
        for p in people:
            assert texts(lambda: kept, p) == texts(fresh, p), p.anchor
    args: list[Any] = []
    assert kept.page_sql(people[0], args, 21, None) is kept.page_sql(people[1], [], 21, None)
    for size in range(1, 5000):  # 3 MB of texts: past the bound, the least recently used go
        kept.page_sql(people[0], [], size, None)
    assert TEXTS_KEPT - 2000 < kept._texts.currsize <= TEXTS_KEPT


async def test_records_of_one_store_come_in_one_statement(
    stores: Stores, catalogue: Catalogue
) -> None:
    """`PostgresStore.singles`: each category's record, as `single` reads it alone (every
    field or some, a category asked for twice), in one statement; none for a category whose
    keys the person lacks or that holds no record of theirs, whatever its columns hold."""
    together = await _together(stores, catalogue)
    nobody = Person("nobody", {k: ("no-such-value",) for k in together.values})
    lacking = Person("lacking", {k: vs for k, vs in together.values.items() if k == "user_id"})
    for store in _postgres(stores):
        asked: list[tuple[str, Fields | None]] = []
        for key, cat in store.categories.items():
            asked += [(key, None), (key, frozenset(f.name for f in cat.category.fields[:2]))]
        for person in (together, nobody, lacking):
            alone = [await store.single(key, person, fields) for key, fields in asked]
            readable = any(person.has_all(store.categories[k].keys) for k, _ in asked)
            before = store.statements
            assert await store.singles(asked, person) == alone, (store.name, person.anchor)
            assert store.statements - before == int(readable), (store.name, person.anchor)
        assert any(await store.singles(asked, together)), store.name
        assert not any(await store.singles(asked, nobody)), store.name


async def test_records_past_a_statements_columns_take_another(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses a select list of more than 1664 columns: `singles` of more reads
    than fit (`SELECT_COLUMNS`, here made small) takes as many statements as it needs, with
    the same records."""
    person = await _together(stores, catalogue)
    store = stores.postgres("profile")
    asked: list[tuple[str, Fields | None]] = [(key, None) for key in store.categories] * 3
    whole = await store.singles(asked, person)
    widest = max(len(c.category.fields) + 1 for c in store.categories.values())
    monkeypatch.setattr("stores.postgres.SELECT_COLUMNS", 1 + widest)
    before = store.statements
    assert await store.singles(asked, person) == whole and any(whole)
    assert 1 < store.statements - before <= len(asked)
