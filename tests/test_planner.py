"""Planned execution (schema/planner.py): the same bytes as the executor, case by case; the
differential test over generated operations is tests/test_planner_differential.py."""

from __future__ import annotations

from uuid import uuid4

import httpx
import orjson
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from stores.pool import create_pool
from stores.registry import Stores
from stores.seed import subject_id
from tests._planner import both
from tests.test_graphql_read import ME_ALL, gql

ALICE = subject_id("alice")


async def same(app: Starlette, query: str, *, planned: bool = True, **kwargs: object) -> bytes:
    answers = await both(app, kwargs.pop("subject", ALICE), query, **kwargs)  # type: ignore[arg-type]  # test helper
    assert answers.run == answers.executor
    assert answers.planned is planned
    return answers.run


async def test_every_category_every_field_is_planned(app: Starlette) -> None:
    await same(app, ME_ALL)


async def test_aliases_typenames_fragments_and_directives(app: Starlette) -> None:
    query = """
    query Q($skip: Boolean!, $n: Int) {
      __typename
      mine: me { __typename who: id
        ...Profile
        profile { city @include(if: $skip) lastName }
        later: webAnalytics(first: $n) { __typename pageInfo { __typename endCursor hasNextPage }
          edges { __typename cursor node { __typename action pageUrl occurredAt durationMs id } } }
        webAnalytics(first: 2) { edges { node { ... on WebAnalyticsRecord { pageUrl } } } }
        payment { __typename accountHolder accountNumberHeld }
      }
      again: me { profile { email } }
    }
    fragment Profile on Subject { profile { firstName email } identifiers { username } }
    """
    for skip in (True, False):
        body = await same(app, query, variables={"skip": skip, "n": 3}, operation_name="Q")
        data = orjson.loads(body)["data"]
        assert list(data["mine"]) == [
            "__typename", "who", "profile", "identifiers", "later", "webAnalytics", "payment"
        ]  # fmt: skip
        assert ("city" in data["mine"]["profile"]) is skip


async def test_paging_across_a_connection_with_cursors(app: Starlette) -> None:
    page = "query P($after: String) { me { webAnalytics(first: 7, after: $after) { edges { cursor node { occurredAt pageUrl } } pageInfo { hasNextPage endCursor } } } }"  # noqa: E501
    after, seen = None, 0
    while True:
        body = await same(app, page, variables={"after": after})
        conn = orjson.loads(body)["data"]["me"]["webAnalytics"]
        seen += len(conn["edges"])
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen > 7


async def test_withheld_fields_and_nulls(app: Starlette) -> None:
    body = await same(
        app,
        "{ me { identifiers { passwordHashHeld securityAnswerHashHeld } sensitive { kind valueHeld } } }",  # noqa: E501
        subject=subject_id("dave"),
    )
    assert b"null" in body or b"false" in body


async def test_a_person_without_data_and_a_category_absent(app: Starlette) -> None:
    # dave has no sensitive data and few categories; an unknown subject has none at all.
    for subject in (subject_id("dave"), uuid4()):
        await same(app, ME_ALL, subject=subject)


async def test_what_the_executor_answers_is_left_to_it(app: Starlette) -> None:
    cases = [
        "{ me { rightToKnow { categories { key } } } }",  # not a record
        "{ me { webAnalytics(first: 0) { edges { cursor } } } }",  # an argument error
        '{ me { webAnalytics(after: "bogus") { edges { cursor } } } }',  # a bad cursor
        "{ dataCategories { key } }",  # another root field
        "{ me { profile { nope } } }",  # not valid
        "query Q($n: Int) { me { device(first: $n) { edges { cursor } } } }",  # bad variables
    ]
    for query in cases:
        await same(app, query, planned=False, variables={"n": "x"})


async def test_a_store_that_is_down_is_the_executors_503_without_a_second_read(
    app: Starlette, client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    store = app.state.services.stores.store_of("web_analytics")
    dsn = next(s.dsn for s in app.state.services.stores.config.stores if s.name == store.name)
    pool, closed = store.pool, await create_pool(dsn, read_only=True)
    await closed.close()
    store.pool = closed  # the analytics system goes away
    try:
        r = await gql(client, issuer.mint("customer", "alice"), ME_ALL)
    finally:
        store.pool = pool
    assert r.status_code == 503, r.text
    assert orjson.loads(r.content)["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    r = await gql(client, issuer.mint("customer", "alice"), ME_ALL)
    assert r.status_code == 200
    metrics = await client.get("/metrics")
    assert 'dsar_graphql_operations_total{path="planned"} 2.0' in metrics.text


async def test_a_planned_read_selects_only_the_fields_asked_for(stores: Stores) -> None:
    """One statement per store and category, of the columns the operation asks for: on
    PostgreSQL and on the MySQL store (the CRM), a withheld field still only as `…_held`."""
    person = await stores.person_of(ALICE, all_keys=False)
    assert person is not None
    rows = await stores.page("web_analytics", person, 3, None, frozenset({"page_url"}))
    assert rows and all(set(r) == {"page_url", "_pos"} for r in rows)
    profile = await stores.single("profile", person, frozenset({"email", "updated_at"}))
    assert profile is not None and set(profile) == {"email", "updated_at"}
    held = await stores.single("identifiers", person, frozenset({"password_hash"}))
    assert held == {"password_hash_held": True}
    provided = await stores.page("provided", person, 3, None, frozenset({"submitted_at"}))
    assert provided and all(set(r) == {"submitted_at", "_pos"} for r in provided)
    assert all(r["submitted_at"].tzinfo is not None for r in provided)  # converted as before
    everything = await stores.page("provided", person, 3, None)
    assert [r["submitted_at"] for r in everything] == [r["submitted_at"] for r in provided]
    assert set(everything[0]) > {"submitted_at", "title", "_pos"}
