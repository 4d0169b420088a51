"""GraphQL over HTTP as the GraphQL Foundation's spec words it, and errors a client can act on.

The media type follows the Accept header; a request error (syntax, validation, a value of the
wrong type) has no `data` entry and is a 400 under application/graphql-response+json and a 200
under application/json; every error carries an `extensions.code` from `schema.error_codes`, and
a wrong value is named by its argument or variable, never repeated, and never logged as ours.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncmy
import asyncpg
import httpx
import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from schema.error_codes import CODES
from tests._mysql import _params as mysql_params

GR = "application/graphql-response+json"
JSON = "application/json"
MARKER = "alice.private@example.com"


@pytest.fixture
def token(issuer: DevIssuer) -> str:
    return issuer.mint("customer", "alice")


async def ask(
    client: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
    accept: str | None = GR,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        headers["Accept"] = accept
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await client.post("/graphql", json=body, headers=headers)


def codes(r: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (GR, GR),
        (JSON, JSON),
        ("*/*", JSON),
        (None, JSON),
        (f"{JSON}, {GR}", GR),
        (f"{GR};q=0.5, {JSON}", JSON),
        ("application/*", JSON),
    ],
)
async def test_the_media_type_follows_accept(
    client: httpx.AsyncClient, token: str, accept: str | None, media: str
) -> None:
    if accept is None:
        # httpx sends */* unless told otherwise; a request may carry no Accept at all.
        r = await client.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": JSON, "Accept": ""},
        )
    else:
        r = await ask(client, token, "{ __typename }", accept=accept)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media
    assert r.json() == {"data": {"__typename": "Query"}}


async def test_nothing_acceptable_is_406(client: httpx.AsyncClient, token: str) -> None:
    r = await ask(client, token, "{ __typename }", accept="text/html")
    assert r.status_code == 406
    assert codes(r) == ["NOT_ACCEPTABLE"]


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{", None, "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { export(id: $id) { id } }", {"id": None}, "BAD_USER_INPUT"),
        ("query A { __typename } query B { __typename }", None, "BAD_REQUEST"),
    ],
)
async def test_a_request_error_is_400_with_no_data_or_200_under_json(
    client: httpx.AsyncClient,
    token: str,
    query: str,
    variables: dict[str, Any] | None,
    code: str,
) -> None:
    preferred = await ask(client, token, query, variables, accept=GR)
    assert preferred.status_code == 400
    assert preferred.headers["content-type"].split(";")[0] == GR
    assert "data" not in preferred.json()
    assert codes(preferred) == [code]
    legacy = await ask(client, token, query, variables, accept=JSON)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].split(";")[0] == JSON
    assert legacy.json() == preferred.json()


async def test_a_body_that_is_no_graphql_request_is_400_under_both(
    client: httpx.AsyncClient, token: str
) -> None:
    for accept in (GR, JSON):
        r = await client.post(
            "/graphql",
            content=b'{"query": "{ __typename }", "extensions": 3}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": JSON, "Accept": accept},
        )
        assert r.status_code == 400
        assert codes(r) == ["BAD_REQUEST"]
        assert "data" not in r.json()


# The client's own mistakes in values: each names what was wrong and the type it needs.
WRONG_VALUES = [
    (
        "{ me { webAnalytics(first: 2147483648) { edges { node { pageUrl } } } } }",
        None,
        "argument",
        "first",
        "Argument 'first' of field 'webAnalytics' has an invalid value: expected Int "
        "(a whole number from -2147483648 to 2147483647).",
    ),
    *(
        (
            "query($id: ID!) { export(id: $id) { id } }",
            {"id": value},
            "variable",
            "id",
            f"Variable '$id' was given {given}: expected ID! (a string or a whole number, "
            "not null).",
        )
        for value, given in [
            ({"email": MARKER}, "a value it cannot take"),
            ([MARKER], "a value it cannot take"),
            (True, "a value it cannot take"),
            (None, "null"),
        ]
    ),
    (
        'query { export(id: {email: "' + MARKER + '"}) { id } }',
        None,
        "argument",
        "id",
        "Argument 'id' of field 'export' has an invalid value: expected ID! "
        "(a string or a whole number, not null).",
    ),
    (
        'mutation { grantPortability(input: {partner: "p", categories: ["profile"], '
        'expiresAt: "' + MARKER + '"}) { __typename } }',
        None,
        "argument",
        "input",
        "Argument 'input' of field 'grantPortability' has an invalid value at "
        "'input.expiresAt': expected DateTime (an ISO 8601 date and time, such as "
        "2026-12-31T23:59:59Z).",
    ),
    (
        "mutation($i: GrantInput!) { grantPortability(input: $i) { __typename } }",
        {"i": {"partner": "p", "categories": ["profile"], "expiresAt": MARKER}},
        "variable",
        "i",
        "Variable '$i' was given a value it cannot take at 'i.expiresAt': expected DateTime "
        "(an ISO 8601 date and time, such as 2026-12-31T23:59:59Z).",
    ),
]


@pytest.mark.parametrize(("query", "variables", "kind", "name", "message"), WRONG_VALUES)
async def test_a_wrong_value_is_the_clients_error_named_and_never_repeated(
    client: httpx.AsyncClient,
    token: str,
    caplog: pytest.LogCaptureFixture,
    query: str,
    variables: dict[str, Any] | None,
    kind: str,
    name: str,
    message: str,
) -> None:
    with caplog.at_level(logging.DEBUG):
        r = await ask(client, token, query, variables)
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["message"] == message
    assert error["extensions"] == {"code": "BAD_USER_INPUT", kind: name}
    assert "data" not in r.json()
    assert MARKER not in r.text
    # The client's mistake is not the service's failure: nothing above INFO, no value logged.
    assert [rec.getMessage() for rec in caplog.records if rec.levelno > logging.INFO] == []
    assert all(MARKER not in rec.getMessage() for rec in caplog.records)


async def test_the_same_wrong_value_is_a_200_under_application_json(
    client: httpx.AsyncClient, token: str
) -> None:
    query, variables, *_ = WRONG_VALUES[0]
    r = await ask(client, token, query, variables, accept=JSON)
    assert r.status_code == 200
    assert codes(r) == ["BAD_USER_INPUT"]
    assert "data" not in r.json()


async def test_every_error_of_a_varied_run_has_a_listed_code(
    client: httpx.AsyncClient, token: str, issuer: DevIssuer
) -> None:
    seen: set[str] = set()
    for query, variables, *_ in WRONG_VALUES:
        seen.update(codes(await ask(client, token, query, variables)))
    for query in ["{", "{ nope }", "{ __schema { types { name } } }", "query A { me { id } } x"]:
        seen.update(codes(await ask(client, token, query)))
    seen.update(codes(await ask(client, "not-a-token", "{ __typename }")))
    seen.update(codes(await client.post("/graphql", json={"query": "{ me { id } }"})))
    partner = issuer.mint("partner", "partner-a")
    seen.update(codes(await ask(client, partner, "{ me { id } }")))
    seen.update(codes(await client.get("/graphql", headers={"Accept": JSON})))
    r = await ask(client, token, '{ me { webAnalytics(first: 1, after: "bogus") { __typename } } }')
    seen.update(codes(r))
    assert seen <= set(CODES)
    assert {
        "BAD_USER_INPUT",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "INVALID_TOKEN",
        "UNAUTHENTICATED",
        "INSUFFICIENT_SCOPE",
        "METHOD_NOT_ALLOWED",
        "INVALID_CURSOR",
    } <= seen


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (ConnectionError, 503, "UNAVAILABLE"),
        # A driver's errors about its connection, not the statement (issue 18, item 9).
        (asyncpg.InternalClientError, 503, "UNAVAILABLE"),
        (asyncpg.exceptions.ProtocolError, 503, "UNAVAILABLE"),
        (asyncpg.AdminShutdownError, 503, "UNAVAILABLE"),
        (asyncmy.errors.OperationalError, 503, "UNAVAILABLE"),
        (asyncmy.errors.InterfaceError, 503, "UNAVAILABLE"),
        (RuntimeError, 500, "INTERNAL_SERVER_ERROR"),
    ],
)
async def test_the_edges_own_answers_carry_a_listed_code_and_the_request_id(
    raised: type[Exception], status: int, code: str
) -> None:
    from api.metrics import Metrics
    from api.middleware import EdgeMiddleware

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise raised

    app = EdgeMiddleware(failing, metrics=Metrics(), max_body=1024)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        r = await c.post("/graphql", json={"query": "{ __typename }"})
    assert r.status_code == status
    [error] = r.json()["errors"]
    assert error["extensions"] == {"code": code, "requestId": r.headers["x-request-id"]}
    assert code in CODES


async def test_a_missing_variable_and_an_unused_one_are_worded_apart(
    client: httpx.AsyncClient, token: str
) -> None:
    missing = await ask(client, token, "query($id: ID!) { export(id: $id) { id } }", {})
    assert missing.json()["errors"] == [
        {
            "message": "Variable '$id' was given no value: expected ID! (a string or a whole "
            "number, not null).",
            "locations": [{"line": 1, "column": 7}],
            "extensions": {"code": "BAD_USER_INPUT", "variable": "id"},
        }
    ]
    unused = await ask(client, token, "query($n: Int) { __typename }", {"n": 1})
    assert [(e["message"], e["extensions"]) for e in unused.json()["errors"]] == [
        ("Variable '$n' is never used.", {"code": "GRAPHQL_VALIDATION_FAILED"})
    ]


async def test_a_mysql_connection_killed_mid_query_is_a_503(
    client: httpx.AsyncClient, token: str, settings: Settings, prefix: str
) -> None:
    """The demo CRM on MariaDB: the connection reading alice's company is killed while it waits
    for a lock (as when a DBA or a failover ends it). asyncmy raises OperationalError, which is
    the store being unavailable: 503 with Retry-After, not 500."""
    if settings.demo_mysql_url is None:
        pytest.skip("no MySQL/MariaDB server answers (TEST_MYSQL_URL)")
    params = mysql_params(settings.demo_mysql_url)
    admin = await asyncmy.connect(**params, db=f"{prefix}_crm", autocommit=True)
    killer = await asyncmy.connect(**params, autocommit=True)
    try:
        async with admin.cursor() as cur:
            await cur.execute("LOCK TABLES contacts WRITE")
        asked = asyncio.create_task(ask(client, token, "{ me { professional { companyName } } }"))
        victim = None
        for _ in range(200):
            async with killer.cursor() as cur:
                await cur.execute(
                    "SELECT id FROM information_schema.processlist WHERE db = %s "
                    "AND state LIKE 'Waiting for table%%' AND id <> CONNECTION_ID()",
                    (f"{prefix}_crm",),
                )
                row = await cur.fetchone()
            if row is not None:
                victim = row[0]
                break
            await asyncio.sleep(0.05)
        assert victim is not None, "the read never waited for the lock"
        async with killer.cursor() as cur:
            await cur.execute(f"KILL {int(victim)}")
        r = await asyncio.wait_for(asked, 30)
    finally:
        admin.close()
        killer.close()
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"].isdigit()
    assert codes(r) == ["UNAVAILABLE"]
    assert MARKER not in r.text
    # The pool heals: the next read answers.
    again = await ask(client, token, "{ me { professional { companyName } } }")
    assert again.status_code == 200 and "errors" not in again.json()
