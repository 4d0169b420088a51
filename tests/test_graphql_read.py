"""`me` over real HTTP: every category, exactly the seeded values, nobody else's, paged right."""

from typing import Any

import httpx
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import SubjectData, build_subject, subject_id, user_id
from tests._factories import insert_marked

ME_ALL = """
{ me { id
  profile { firstName lastName email phone city country }
  identifiers { username passwordHashHeld securityQuestionHeld securityAnswerHashHeld }
  payment { accountHolder bankName accountNumberHeld routingNumberHeld }
  device(first: 100) { edges { node { ipAddress userAgent cookieId } } }
  webAnalytics(first: 100) { edges { node { pageUrl action } } pageInfo { hasNextPage } }
  geolocation(first: 100) { edges { node { city postalCode country timeZone } } }
  recordings { fileName mediaType bytes downloadPath }
  sensitive { kind valueHeld }
  provided(first: 100) { edges { node { channel title body } } }
  professional { companyName jobTitle }
  preferences { functionalCookies advertisingCookies doNotSellOrShare }
} }
"""


async def gql(
    client: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture(scope="module")
async def marked(stores: Stores, catalogue: Catalogue) -> dict[str, SubjectData]:
    return {
        "a": await insert_marked(stores, catalogue, "marked-a", "MRKAAA", 11),
        "b": await insert_marked(stores, catalogue, "marked-b", "MRKBBB", 12),
    }


async def test_me_returns_every_category_with_the_seeded_values(
    client: httpx.AsyncClient, issuer: DevIssuer, catalogue: Catalogue
) -> None:
    r = await gql(client, issuer.mint("customer", "alice"), ME_ALL)
    assert r.status_code == 200, r.text
    me = r.json()["data"]["me"]
    alice = build_subject("alice", full=True, sensitive=True)
    assert me["id"] == str(subject_id("alice"))
    for key in catalogue.keys:
        assert me[_camel(key)], f"category {key} came back empty"
    profile = alice.rows["profile"][0]
    assert me["profile"]["firstName"] == profile["first_name"]
    assert me["profile"]["email"] == profile["email"]
    assert me["identifiers"]["passwordHashHeld"] is True
    assert me["payment"][0]["accountNumberHeld"] is True
    assert {s["kind"] for s in me["sensitive"]} == {"ssn", "drivers_license", "passport"}
    assert len(me["webAnalytics"]["edges"]) == len(alice.rows["web_analytics"])
    assert [e["node"]["pageUrl"] for e in me["webAnalytics"]["edges"]] == [
        e["page_url"] for e in alice.rows["web_analytics"]
    ]
    assert {f["fileName"] for f in me["recordings"]} == set(alice.files)
    assert me["recordings"][0]["downloadPath"].startswith("/recordings/")
    # Withheld values are never in the answer, in any form.
    body = r.text
    for row in alice.rows["sensitive"]:
        assert row["value"] not in body
        assert row["value"].replace("-", "") not in body
    assert alice.rows["payment"][0]["account_number"] not in body
    assert alice.rows["identifiers"][0]["password_hash"] not in body


async def test_no_other_subjects_value_ever_appears(
    client: httpx.AsyncClient, issuer: DevIssuer, marked: dict[str, SubjectData]
) -> None:
    for mine, other, marker, foreign in (
        ("a", "b", "MRKAAA", "MRKBBB"),
        ("b", "a", "MRKBBB", "MRKAAA"),
    ):
        r = await gql(client, issuer.mint("customer", f"marked-{mine}"), ME_ALL)
        assert r.status_code == 200
        assert marker in r.text
        assert foreign not in r.text
        assert f"10.{12 if mine == 'a' else 11}." not in r.text
        assert str(marked[other].id) not in r.text


async def test_an_unlinked_login_has_no_data(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    r = await gql(client, issuer.mint("customer", "nobody-linked"), "{ me { id } }")
    assert r.status_code == 200
    assert r.json() == {"data": {"me": None}}


WALK = """query($after: String) { me { webAnalytics(first: 7, after: $after) {
  edges { cursor node { id occurredAt } } pageInfo { hasNextPage endCursor } } } }"""


async def test_pagination_walks_everything_exactly_once(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores
) -> None:
    token = issuer.mint("customer", "alice")
    seen: list[int] = []
    after = None
    for _ in range(100):
        r = await gql(client, token, WALK, {"after": after})
        page = r.json()["data"]["me"]["webAnalytics"]
        seen += [e["node"]["id"] for e in page["edges"]]
        assert len(page["edges"]) <= 7
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    expected = await stores.postgres("web_analytics").pool.fetch(
        "SELECT e.id FROM page_events e JOIN identifies i USING (anonymous_id) "
        "WHERE i.user_id = $1 ORDER BY e.ts, e.id",
        user_id("alice"),
    )
    assert seen == [r["id"] for r in expected]


async def test_first_is_capped_and_must_be_positive(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    token = issuer.mint("customer", "alice")
    q = "query($n: Int) { me { webAnalytics(first: $n) { edges { cursor } } } }"
    big = await gql(client, token, q, {"n": 100000})
    # alice has 40 events: capped requests return all of them, never more than 100.
    assert len(big.json()["data"]["me"]["webAnalytics"]["edges"]) == 40
    zero = await gql(client, token, q, {"n": 0})
    assert zero.json()["errors"][0]["message"] == "`first` must be at least 1."


@pytest.mark.parametrize("tamper", ["flip", "other_category", "garbage", "long"])
async def test_a_tampered_cursor_is_an_error(
    client: httpx.AsyncClient, issuer: DevIssuer, tamper: str
) -> None:
    token = issuer.mint("customer", "alice")
    first = await gql(client, token, WALK, {"after": None})
    cursor = first.json()["data"]["me"]["webAnalytics"]["pageInfo"]["endCursor"]
    query = WALK
    if tamper == "flip":
        cursor = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    elif tamper == "other_category":
        query = WALK.replace("webAnalytics", "device").replace("occurredAt", "firstSeen")
    elif tamper == "garbage":
        cursor = "not a cursor at all!"
    else:
        cursor = "A" * 5000
    r = await gql(client, token, query, {"after": cursor})
    assert r.json()["errors"][0]["message"] == "The cursor is not valid for this list."
    assert r.json()["data"]["me"] is None


async def test_statements_are_bounded_by_categories_not_data(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores
) -> None:
    def sent() -> int:
        return sum(getattr(s, "statements", 0) for s in stores.by_name.values())

    before = sent()
    await gql(client, issuer.mint("customer", "alice"), ME_ALL)
    alice_statements = sent() - before
    before = sent()
    # A login linked to no subject costs no statement at all.
    await gql(client, issuer.mint("customer", "heavy-less"), ME_ALL)
    assert sent() - before == 0
    # alice: 11 categories, recordings from files: at most one statement per SQL category, plus
    # one per key to find her (the anchor checked, then her e-mail, customer and cookie ids),
    # however many values each key has (she has several cookie ids).
    assert alice_statements <= 10 + len(stores.config.keys)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)
