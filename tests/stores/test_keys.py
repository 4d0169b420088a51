"""A person's keys (`Stores.ensure`): keys read from the same rows come in one statement, with
the values each key's own statement finds."""

from __future__ import annotations

from stores.postgres import PostgresStore
from stores.registry import Stores
from stores.seed import subject_id


async def test_keys_of_one_table_are_found_in_one_statement(stores: Stores) -> None:
    person = await stores.person_of(subject_id("alice"), all_keys=False)
    assert person is not None
    keys = {k.name: k for k in stores.config.keys}
    # The demo company's e-mail address and billing id are both columns of `users`.
    assert (keys["email"].table, keys["email"].match) == (
        keys["customer"].table,
        keys["customer"].match,
    )
    app = stores.by_name[keys["email"].store]
    assert isinstance(app, PostgresStore)
    before = app.statements
    await stores.ensure(person, ["email"])
    assert app.statements == before + 1
    assert set(person.values) == {"user_id", "email", "customer"}  # no cookie ids: not asked
    for name in ("email", "customer"):
        key = keys[name]
        ((column, anchor),) = key.match
        # What the table holds for her, read here without the store's SQL.
        held = await app.pool.fetch(
            f'SELECT DISTINCT "{key.column}"::text AS v FROM "{key.table}" '  # noqa: S608  # the demo's own names
            f'WHERE "{column}"::text = any($1::text[]) AND "{key.column}" IS NOT NULL',
            list(person.of(anchor)),
        )
        assert sorted(person.values[name]) == sorted(r["v"] for r in held)
        assert person.values[name]  # alice has both
        assert person.shared.get(name, 0) == 0
    # Asked for now, the billing id costs nothing more.
    before = app.statements
    await stores.ensure(person, ["customer"])
    assert app.statements == before
