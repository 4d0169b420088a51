"""Hostile GraphQL requests are refused at the edge or in validation, before any SQL."""

from collections.abc import Iterator

import httpx
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from schema import build_schema
from stores.registry import Stores


@pytest.fixture
def no_sql(stores: Stores) -> Iterator[None]:
    """Asserts that the test sent no statement to any store."""
    before = [getattr(s, "statements", 0) for s in stores.by_name.values()]
    yield
    assert [getattr(s, "statements", 0) for s in stores.by_name.values()] == before


@pytest.fixture
def auth(issuer: DevIssuer) -> dict[str, str]:
    # The preferred media type of GraphQL over HTTP: a request error is then a 400 with no data
    # (tests/test_graphql_http.py covers application/json, where it is a 200).
    return {
        "Authorization": f"Bearer {issuer.mint('customer', 'alice')}",
        "Accept": "application/graphql-response+json",
    }


async def post(client: httpx.AsyncClient, auth: dict[str, str], query: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers=auth)


@pytest.mark.usefixtures("no_sql")
async def test_depth_20_is_rejected(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    q = (
        "{ me { "
        + "rightToKnow { categories { category { fields { " * 5
        + "name"
        + " } } } }" * 5
        + " } }"
    )
    r = await post(client, auth, q)
    assert r.status_code == 400
    assert "depth" in r.text


@pytest.mark.usefixtures("no_sql")
async def test_101_aliases_are_rejected(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    q = "{ me { " + " ".join(f"a{i}: profile {{ firstName }}" for i in range(101)) + " } }"
    r = await post(client, auth, q)
    assert r.status_code == 400
    assert "aliases" in r.text


@pytest.mark.usefixtures("no_sql")
async def test_2000_tokens_are_rejected(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    q = "{ me { profile { " + " ".join(["firstName"] * 2000) + " } } }"
    r = await post(client, auth, q)
    assert r.status_code == 400
    assert "token" in r.text.lower()


@pytest.mark.usefixtures("no_sql")
async def test_repeated_directives_are_rejected(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    q = "{ me { profile { firstName " + "@include(if: true) " * 50 + "} } }"
    r = await post(client, auth, q)
    assert r.status_code == 400


@pytest.mark.usefixtures("no_sql")
async def test_introspection_is_off_but_typename_works(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    r = await post(client, auth, "{ __schema { types { name } } }")
    assert r.status_code == 400
    assert "introspection" in r.text.lower()
    r = await post(client, auth, '{ __type(name: "Subject") { name } }')
    assert r.status_code == 400
    ok = await post(client, auth, "{ __typename }")
    assert ok.json() == {"data": {"__typename": "Query"}}


@pytest.mark.usefixtures("no_sql")
@pytest.mark.parametrize(
    "query",
    [
        "{ me { profil { firstName } } }",  # a field of Subject, misspelt
        "{ me { profile { firstNam } } }",
        "{ datacategories { key } }",  # a root field
        '{ export(idd: "x") { id } }',  # an argument
        "query($f: ExportFormt!) { __typename }",  # a type
        "{ me { ... on Subjekt { id } } }",
    ],
)
async def test_no_field_suggestions_outside_development(
    client: httpx.AsyncClient, auth: dict[str, str], query: str
) -> None:
    """With introspection off, "Did you mean 'profile'?" would rebuild the schema for a caller
    one typo at a time: the error names what is wrong and suggests nothing."""
    r = await post(client, auth, query)
    assert r.status_code == 400
    message = r.json()["errors"][0]["message"]
    assert "Did you mean" not in r.text and "?" not in message, message


async def test_suggestions_stay_in_development(catalogue: Catalogue) -> None:
    schema = build_schema(catalogue, dev=True)
    result = await schema.execute("{ datacategories { key } }")
    assert result.errors and "Did you mean 'dataCategories'?" in result.errors[0].message


@pytest.mark.usefixtures("no_sql")
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'[{"query": "{ __typename }"}]', "application/json", 400),
        (b"query={ __typename }", "application/x-www-form-urlencoded", 400),
        (b'{"query": "{ __typename }"}', "text/plain", 400),
        (
            b"--x\r\nContent-Disposition: form-data; name=q\r\n\r\n{}\r\n--x--",
            "multipart/form-data; boundary=x",
            400,
        ),
        (b"{not json", "application/json", 400),
        (b"[" * 200_000 + b"]" * 200_000, "application/json", 400),
        (
            b'{"query": "{ __typename }", "variables": {"n": ' + b"9" * 5000 + b"}}",
            "application/json",
            400,
        ),
        (b'{"query": "{ __typename }", "variables": {"n": NaN}}', "application/json", 400),
        (b'{"query": "\\ud800"}', "application/json", 400),
        (b'{"query": 42}', "application/json", 400),
        (b'{"query": "{ __typename }", "variables": [1]}', "application/json", 400),
    ],
)
async def test_malformed_bodies_are_400_never_500(
    client: httpx.AsyncClient, auth: dict[str, str], content: bytes, content_type: str, status: int
) -> None:
    r = await client.post(
        "/graphql", content=content, headers={**auth, "Content-Type": content_type}
    )
    assert r.status_code == status
    assert "Traceback" not in r.text


@pytest.mark.usefixtures("no_sql")
async def test_a_megabyte_body_is_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.post(
        "/graphql",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 413


@pytest.mark.usefixtures("no_sql")
async def test_get_is_refused(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/graphql", params={"query": "{ __typename }"}, headers=auth)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"


@pytest.mark.usefixtures("no_sql")
async def test_several_operations_without_a_name_run_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    r = await post(client, auth, "query A { me { id } } query B { me { profile { email } } }")
    assert r.status_code == 400
    assert "data" not in r.json()
    named = await client.post(
        "/graphql",
        json={"query": "query A { __typename } query B { __typename }", "operationName": "C"},
        headers=auth,
    )
    assert named.status_code == 400


@pytest.mark.usefixtures("no_sql")
async def test_no_token_is_401_and_graphql_never_runs(client: httpx.AsyncClient) -> None:
    r = await client.post("/graphql", json={"query": "{ me { id } }"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="dsar"'
    assert "data" not in r.json()


@pytest.mark.usefixtures("no_sql")
async def test_a_partner_token_on_me_is_403(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    token = issuer.mint("partner", "partner-a")
    r = await client.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="dsar:self"' in r.headers["www-authenticate"]


async def test_sql_metacharacters_are_literal(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    q = "query($a: String) { me { webAnalytics(first: 1, after: $a) { edges { cursor } } } }"
    r = await client.post(
        "/graphql",
        json={"query": q, "variables": {"a": "'; DROP TABLE web_analytics; --"}},
        headers=auth,
    )
    assert r.json()["errors"][0]["message"] == "The cursor is not valid for this list."
    again = await post(client, auth, "{ me { webAnalytics(first: 1) { edges { cursor } } } }")
    assert len(again.json()["data"]["me"]["webAnalytics"]["edges"]) == 1


async def test_a_repeated_query_is_validated_once(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # ValidationCache keys on the rule classes: limits built per request would never hit it.
    from strawberry.extensions.validation_cache import _get_validate_cache

    cache = _get_validate_cache(256)
    query = "{ me { profile { firstName } } dataCategories { key } }"
    assert (await post(client, auth, query)).status_code == 200
    before = cache.cache_info()
    for _ in range(3):
        assert (await post(client, auth, query)).status_code == 200
    after = cache.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)
