"""The page a login's query reads first is planned once per connection, not at every call.

asyncpg prepares each statement once per connection; PostgreSQL plans it for the values of each
call five times, and after that keeps one plan for any values where that plan is priced no
higher than the ones it made. With the page's limit passed as `LIMIT $n` it priced the kept plan
for a tenth of the table's rows, never kept it, and planned the events page again at every call:
0.4 ms of PostgreSQL's CPU for a statement that took 0.7 ms in all, on the benchmark's data.
`page_sql` and `page_json_sql` now write the limit as a number.

Still planned at every call, with the same plan: a page given the person's key values as a
parameter (PostgreSQL counts the values of each call, and guesses ten for the plan it would
keep), and a page after a position (it guesses the position leaves a fifth as many records:
the kept plan priced 484 against 226 for the same plan in this test).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from catalogue import Catalogue
from stores.mapping import JsonPage, Value
from stores.registry import Stores
from tests.exporters.conftest import new_subject

CALLS = 8  # five plans for the values of each call, then the one kept
EVENTS = 100_000  # on one cookie id, as the benchmark's heavy person: what prices `LIMIT $n`


async def test_a_page_finding_its_keys_keeps_one_plan(stores: Stores, catalogue: Catalogue) -> None:
    analytics = stores.postgres("web_analytics")
    heavy = await new_subject(stores, catalogue, events=EVENTS)
    dsn = stores.config.store(analytics.name).dsn
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE page_events, identifies")  # as autovacuum would, in time
        person = await stores.person_of(heavy.id)
        anchor_only = await stores.person_of(heavy.id, all_keys=False)
        assert person is not None and anchor_only is not None
        shape = (("node", (("id", Value("id")), ("url", Value("page_url")))),)
        keys = [k for k in stores.config.keys if k.name == "anonymous_id"]
        for positions in (False, True):  # the page's text, or each record with its cursor's
            asked = JsonPage(10, None, None, shape, positions)
            args: list[Any] = []
            sql = analytics.page_json_sql("web_analytics", anchor_only, asked, keys, args)
            answers = [await conn.fetchrow(sql, *args) for _ in range(CALLS)]
            page = answers[0]
            assert page is not None and all(a == page for a in answers)  # the same each call
            assert page[1] == 11  # the page and one more, and the person's cookie ids found
            assert sorted(v for _, v, _ in page[3]) == sorted(person.of("anonymous_id"))
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement = $1",
                sql,
            )
            assert plans is not None and tuple(plans) == (CALLS - 5, 5), positions
    finally:
        await conn.close()
