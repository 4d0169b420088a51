"""The guard against cast folding (`Where`, `_merged_sql`, `page_sql` in stores/postgres.py:
`col = v::kind AND exact(col) = v`) holds for a column with a nondeterministic collation
(PostgreSQL 12+, e.g. ICU `und-u-ks-level2`, a common choice for e-mail columns): `col::text`
keeps the column's collation, so the text comparison is made under "C", byte for byte.
Without it one person's key value reached another person's rows whose value differs only in
case, in GraphQL pages and in the export alike.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg

from catalogue import Catalogue
from stores.postgres import MappedCategory, introspect
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import snapshot


async def test_a_case_insensitive_collation_does_not_fold_two_people_into_one(
    stores: Stores, catalogue: Catalogue
) -> None:
    app = stores.postgres("profile")  # the app database (PostgreSQL)
    owner = await asyncpg.connect(stores.config.store(app.name).dsn)
    try:
        await owner.execute(
            "CREATE COLLATION IF NOT EXISTS case_blind "
            "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
        await owner.execute(
            "CREATE TABLE ci_messages (id bigint PRIMARY KEY, "
            "contact_email text COLLATE case_blind NOT NULL, channel text, subject text, "
            "body text, received_at timestamptz NOT NULL)"
        )
        await owner.executemany(
            "INSERT INTO ci_messages VALUES ($1, $2, 'email', 'hello', $3, now())",
            [
                (1, "alice@example.com", "alice's own message"),
                # Another person's message: an address that differs from alice's only in case.
                (2, "ALICE@Example.com", "MALLORY-PRIVATE-MESSAGE"),
            ],
        )
        types = await introspect(app.pool, {"ci_messages"})
        mapped = dataclasses.replace(
            stores.config.categories["provided"], store=app.name, table="ci_messages"
        )
        cat = MappedCategory(catalogue.category("provided"), mapped, types)
        alice = await stores.person_of(subject_id("alice"))
        assert alice is not None and alice.of("email") == ("alice@example.com",)

        seen: list[str] = []
        # The export's read (merged, in index order) inside its snapshot.
        async with snapshot(app) as snap:
            args: list[Any] = []
            seen += [
                str(dict(r)) for r in await snap.conn.fetch(cat.records_sql(alice, args), *args)
            ]
        # GraphQL's page, and the `= any(...)` read (counts, single records, support's values).
        args = []
        seen += [
            str(dict(r)) for r in await app.pool.fetch(cat.page_sql(alice, args, 10, None), *args)
        ]
        args = []
        seen += [str(dict(r)) for r in await app.pool.fetch(cat.any_sql(alice, args), *args)]
        assert any("alice's own message" in s for s in seen)
        assert not [s for s in seen if "MALLORY" in s]
    finally:
        await owner.execute("DROP TABLE IF EXISTS ci_messages")
        await owner.close()
