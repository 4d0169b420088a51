"""A key value that a key column cannot hold is dropped before the cast (`fitting`,
stores/postgres.py), so that one odd value never fails the whole read: a value of integer
shape but out of the column's range (a 10-digit id against an `integer` column, a 19-digit one
against `bigint`) failed the person's page, counts and export with NumericValueOutOfRange.
"""

from __future__ import annotations

from typing import Any

from stores.mapping import Person
from stores.registry import Stores
from stores.seed import subject_id
from stores.streams import snapshot


async def test_a_key_value_out_of_the_columns_range_is_dropped_not_fatal(stores: Stores) -> None:
    alice = await stores.person_of(subject_id("alice"))
    assert alice is not None
    # users.id is bigint: 9999999999999999999 has 19 digits but exceeds 2**63 - 1.
    odd = Person(
        alice.anchor,
        {**alice.values, "user_id": (*alice.of("user_id"), "9999999999999999999")},
    )
    store = stores.postgres("sensitive")
    cat = store.categories["sensitive"]
    expected = await store.page("sensitive", alice, 50, None)
    assert expected
    assert await store.page("sensitive", odd, 50, None) == expected
    async with snapshot(store) as snap:
        args: list[Any] = []
        rows = await snap.conn.fetch(cat.records_sql(odd, args), *args)
    assert len(rows) == len(expected)
