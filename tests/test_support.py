"""Support agents: purpose-bound, masked, limited look-ups, each audited before data leaves."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.devissuer import STRONG_ACR, DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from domain.leases import Leases
from domain.masking import mask
from domain.partners import add_partner
from domain.principals import Partner, SupportAgent
from domain.services import Services
from schema import build_schema
from schema.context import Context
from stores.deployment import Deployment
from stores.pool import create_pool
from stores.registry import Stores
from stores.seed import SubjectData, insert_subject
from tests._factories import marked_subject
from tests._tokens import TEST_ISSUER

ACCESS = {"ticket": "SUP-1234", "reason": "Customer asked what we hold about them"}
_TICKETS = itertools.count(10_000)


def ticket() -> dict[str, str]:
    """A ticket of its own: a ticket covers only the person it was first used for."""
    return {**ACCESS, "ticket": f"TST-{next(_TICKETS)}"}


@pytest.fixture(autouse=True)
def fresh_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test's ACCESS is a new ticket: the session's tests look at many different people.
    monkeypatch.setitem(globals(), "ACCESS", ticket())


PROFILE = "profile { firstName lastName email phone street city postalCode country }"
EVERYTHING = f"""
  id {PROFILE}
  identifiers {{ username passwordHashHeld securityQuestionHeld securityAnswerHashHeld }}
  payment {{ id accountHolder bankName accountNumberHeld routingNumberHeld }}
  device(first: 5) {{ edges {{ node {{ id ipAddress cookieId deviceId userAgent isp }} }} }}
  geolocation(first: 5) {{ edges {{ node {{ ipAddress city postalCode }} }} }}
  provided(first: 5) {{ edges {{ node {{ title body }} }} }}
  sensitive {{ kind valueHeld }}
  withheld {{ category field kind rule }}
  rightToKnow {{ categories {{ category {{ key }} records }} }}
  accessLog {{ ticket }}
"""
READ = "query($id: ID!, $access: SupportAccess!) { subject(id: $id, access: $access) { %s } }"
FIND = (
    "query($email: String!, $access: SupportAccess!) "
    "{ findSubjects(email: $email, access: $access) { %s } }"
)
UNMASK = """
mutation($subject: ID!, $category: String!, $field: String!, $record: Int,
         $access: SupportAccess!) {
  unmaskField(subject: $subject, category: $category, field: $field, record: $record,
              access: $access) {
    __typename
    ... on UnmaskedValue { subject category field record value }
    ... on StrongerLoginRequired { acrValues maxAge }
    ... on SupportLimitReached { retryAfter }
    ... on InvalidSupportAccess { message }
    ... on UnmaskRefused { message }
  }
}
"""
EXPORT_FOR = """
mutation($subject: ID!, $access: SupportAccess!, $input: ExportInput!,
         $verification: IdentityVerification!) {
  requestExportFor(subject: $subject, access: $access, input: $input,
                   verification: $verification) {
    __typename
    ... on OpenedExport { id status format purpose categories createdAt expiresAt }
    ... on InvalidSupportAccess { message }
    ... on ExportLimitReached { retryAfter }
    ... on InvalidExportRequest { message }
  }
}
"""
VERIFIED = {"method": "EMAIL_CONFIRMED", "note": "Replied from the address on file"}


@dataclass
class Person:
    handle: str
    marker: str
    id: UUID
    data: SubjectData
    email: str
    phone: str
    street: str
    postal_code: str

    def withheld_markers(self, catalogue: Catalogue) -> list[str]:
        """Every §7024(d) value planted for this person."""
        return [
            str(row[f.name])
            for key, rows in self.data.rows.items()
            for row in rows
            for f in catalogue.category(key).withheld_fields
            if row.get(f.name)
        ]


async def new_person(
    stores: Stores, catalogue: Catalogue, *, email: str | None = None, octet: int = 91
) -> Person:
    """A subject of this test alone: a marker in every text field, real-looking contact data."""
    tag = uuid4().hex[:8]
    handle = f"sup-{tag}"
    data = marked_subject(catalogue, handle, f"W{tag}", octet)
    profile = data.rows["profile"][0]
    profile.update(
        email=email or f"Zed.Find-{tag}@Example.org",
        phone=f"+1-555-{int(tag, 16) % 1000:03d}-0167",
        street=f"{tag} Marker Street 12",
        postal_code=f"P{tag}",
    )
    await insert_subject(stores, catalogue, data)
    return Person(
        handle,
        f"W{tag}",
        data.id,
        data,
        profile["email"],
        profile["phone"],
        profile["street"],
        profile["postal_code"],
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def gql(
    client: httpx.AsyncClient, token: str, query: str, **variables: Any
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )


def agent_token(issuer: DevIssuer, **login: Any) -> tuple[str, str]:
    """A token of an agent of this test alone, so hourly limits never meet another test's."""
    name = f"agent-{uuid4().hex[:8]}"
    return name, issuer.mint("support", name, **login)


@dataclass
class Row:
    action: str
    outcome: str
    subject_id: UUID | None
    actor: dict[str, str]
    purpose: dict[str, str]
    categories: list[str]


async def rows_of(db: asyncpg.Connection, response: httpx.Response) -> list[Row]:
    """The audit rows the request wrote, in order."""
    return await rows_where(db, "request_id = $1", response.headers["x-request-id"])


async def rows_where(db: asyncpg.Connection, where: str, *args: Any) -> list[Row]:
    columns = "action, outcome, subject_id, actor::text AS actor, purpose::text AS purpose"
    sql = f"SELECT {columns}, categories FROM audit_log WHERE {where} ORDER BY seq"  # noqa: S608  # the tests' own clause
    records = await db.fetch(sql, *args)
    return [
        Row(
            r["action"],
            r["outcome"],
            r["subject_id"],
            orjson.loads(r["actor"]),
            orjson.loads(r["purpose"]),
            list(r["categories"]),
        )
        for r in records
    ]


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue) -> Person:
    return await new_person(stores, catalogue)


async def test_find_matches_the_exact_address_only(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    _, token = agent_token(issuer)
    local, domain = person.email.split("@")
    hits = [person.email.lower(), person.email.upper(), f"  {person.email}\t"]
    misses = [
        f"%@{domain}",
        f"{local[:-1]}%@{domain}",
        f"{local[:-1]}_@{domain}",
        f"_{person.email[1:]}",
        f"{local}@{domain}x",
        "%@%",
        f"{local}@%",
        f"{local}'--@{domain}",
    ]
    for email in hits + misses:
        r = await gql(client, token, FIND % "id", email=email, access=ACCESS)
        assert r.status_code == 200, r.text
        found = [s["id"] for s in r.json()["data"]["findSubjects"]]
        assert found == ([str(person.id)] if email in hits else []), email
        rows = await rows_of(db, r)
        expected_subject = person.id if email in hits else None
        assert [(x.action, x.outcome, x.subject_id) for x in rows] == [
            ("subject.find", "allowed", expected_subject)
        ]
        assert rows[0].purpose == ACCESS  # ticket and reason, never the address searched
        assert person.email.lower() not in orjson.dumps(rows[0].__dict__, default=str).decode()
    for email in ["%", "", "no-at-sign", "a b@c.d", "x\x00@y.z", "a" * 400 + "@b.c"]:
        r = await gql(client, token, FIND % "id", email=email, access=ACCESS)
        # A field's error, not the request's: GraphQL over HTTP answers 200 with `data: null`.
        assert r.status_code == 200
        assert r.json()["data"] is None
        assert r.json()["errors"][0]["extensions"] == {"code": "INVALID_ARGUMENT"}
        assert [(x.action, x.outcome, x.subject_id) for x in await rows_of(db, r)] == [
            ("subject.find", "denied", None)
        ]


async def test_find_returns_at_most_five(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    shared = f"family-{uuid4().hex[:8]}@example.net"
    people = [await new_person(stores, catalogue, email=shared) for _ in range(7)]
    _, token = agent_token(issuer)
    r = await gql(client, token, FIND % "id profile { email }", email=shared, access=ACCESS)
    found = r.json()["data"]["findSubjects"]
    assert len(found) == 5
    assert {s["id"] for s in found} <= {str(p.id) for p in people}
    rows = await rows_of(db, r)
    assert sorted(str(x.subject_id) for x in rows) == sorted(s["id"] for s in found)
    assert {(x.action, x.outcome, tuple(x.categories)) for x in rows} == {
        ("subject.find", "allowed", ("profile",))
    }


BAD_ACCESS = [
    {"ticket": "", "reason": ACCESS["reason"]},
    {"ticket": "sup-1234", "reason": ACCESS["reason"]},
    {"ticket": "SUP-", "reason": ACCESS["reason"]},
    {"ticket": "S-1", "reason": ACCESS["reason"]},
    {"ticket": "SUP-1' OR '1'='1", "reason": ACCESS["reason"]},
    {"ticket": "SUP-١٢٣", "reason": ACCESS["reason"]},  # Arabic-Indic digits
    {"ticket": "SUP-1234", "reason": ""},
    {"ticket": "SUP-1234", "reason": "too short"},
    {"ticket": "SUP-1234", "reason": "   short    "},
    {"ticket": "SUP-1234", "reason": "x" * 501},
    {"ticket": "SUP-1234", "reason": "a reason with a NUL \x00 inside"},
    {"ticket": "SUP-1234", "reason": "a reason \x1b[31m in red"},
]


@pytest.mark.parametrize("access", BAD_ACCESS)
async def test_a_bad_ticket_or_reason_gets_nothing_and_is_audited(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    db: asyncpg.Connection,
    access: dict[str, str],
) -> None:
    _, token = agent_token(issuer)
    read = await gql(client, token, READ % PROFILE, id=str(person.id), access=access)
    find = await gql(client, token, FIND % PROFILE, email=person.email, access=access)
    unmask = await gql(
        client,
        token,
        UNMASK,
        subject=str(person.id),
        category="profile",
        field="email",
        access=access,
    )
    export = await gql(
        client,
        token,
        EXPORT_FOR,
        subject=str(person.id),
        access=access,
        input={"format": "JSON"},
        verification=VERIFIED,
    )
    assert read.json()["data"] == {"subject": None}
    assert find.json()["data"] is None
    for r in (read, find):
        assert r.json()["errors"][0]["extensions"] == {"code": "INVALID_SUPPORT_ACCESS"}
    assert unmask.json()["data"]["unmaskField"]["__typename"] == "InvalidSupportAccess"
    assert export.json()["data"]["requestExportFor"]["__typename"] == "InvalidSupportAccess"
    for r, action, subject in [
        (read, "subject.read", person.id),
        (find, "subject.find", None),
        (unmask, "field.unmask", person.id),
        (export, "export.request", person.id),
    ]:
        assert person.marker.encode() not in r.content  # nothing of the person
        assert person.email.encode() not in r.content
        rows = await rows_of(db, r)
        assert [(x.action, x.outcome, x.subject_id, x.purpose) for x in rows] == [
            (action, "denied", subject, {})
        ]


IDENTIFYING_REASONS = [
    ("Caller gave SSN 078-05-1120 to prove who they are", "government ID"),
    ("Refund to card 4111 1111 1111 1111 did not arrive", "payment card"),
    ("Refund to card 5500-0000-0000-0004 did not arrive", "payment card"),
    ("Refund to IBAN DE89 3704 0044 0532 0130 00 failed", "IBAN"),
    ("Customer's account 000123456789 was charged twice", "account, document or phone"),
    ("Asked from jane.roe@example.net about their data", "e-mail address"),
    ("Pasted their token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl", "credential"),
    ("App sent Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "credential"),
]


@pytest.mark.parametrize(("reason", "said"), IDENTIFYING_REASONS)
async def test_a_reason_holding_an_identifier_is_refused_before_anything_is_written(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    db: asyncpg.Connection,
    reason: str,
    said: str,
) -> None:
    """The reason is kept forever in the append-only audit log: one that holds a government ID,
    a card or account number, an e-mail address or a credential is refused with a message saying
    which, and the text is written nowhere (the denial's row has no purpose)."""
    _, token = agent_token(issuer)
    access = {**ACCESS, "reason": reason}
    read = await gql(client, token, READ % "id", id=str(person.id), access=access)
    export = await gql(
        client,
        token,
        EXPORT_FOR,
        subject=str(person.id),
        access=access,
        input={"format": "JSON"},
        verification=VERIFIED,
    )
    [error] = read.json()["errors"]
    assert error["extensions"] == {"code": "INVALID_SUPPORT_ACCESS"}
    assert said in error["message"] and "audit log" in error["message"]
    assert read.json()["data"] == {"subject": None}
    refused = export.json()["data"]["requestExportFor"]
    assert refused["__typename"] == "InvalidSupportAccess" and said in refused["message"]
    for r in (read, export):
        assert reason.encode() not in r.content
        assert [(x.outcome, x.purpose) for x in await rows_of(db, r)] == [("denied", {})]
    stored = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE purpose::text LIKE '%' || $1 || '%'", reason[-12:]
    )
    assert stored == 0
    # The same look with the details left out goes through.
    fine = {**ACCESS, "reason": "Customer asked about a refund to their card"}
    ok = await gql(client, token, READ % "id", id=str(person.id), access=fine)
    assert ok.json()["data"]["subject"]["id"] == str(person.id)


async def test_agents_see_presence_counts_and_masked_values_only(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    _, token = agent_token(issuer)
    r = await gql(client, token, READ % EVERYTHING, id=str(person.id), access=ACCESS)
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    seen = r.json()["data"]["subject"]
    profile = seen["profile"]
    local, domain = person.email.split("@")
    assert profile["email"] == f"{local[0]}***@{domain[0]}***.org"
    assert profile["phone"] == "*** 67"
    assert profile["lastName"] == person.data.rows["profile"][0]["last_name"][0] + "."
    assert (profile["street"], profile["postalCode"]) == (None, None)
    assert profile["city"] == person.data.rows["profile"][0]["city"]  # the city, and no more
    for node in (e["node"] for e in seen["device"]["edges"]):
        assert (node["ipAddress"], node["cookieId"], node["deviceId"]) == (None, None, None)
    assert all(e["node"]["body"] is None for e in seen["provided"]["edges"])
    assert all(e["node"]["ipAddress"] is None for e in seen["geolocation"]["edges"])
    # Presence and counts of every category, and what is held but never shown.
    counts = {c["category"]["key"]: c["records"] for c in seen["rightToKnow"]["categories"]}
    assert counts["device"] == len(person.data.rows["device"])
    assert counts["sensitive"] == len(person.data.rows["sensitive"]) > 0
    assert {(w["category"], w["field"]) for w in seen["withheld"]} >= {
        ("identifiers", "password_hash"),
        ("sensitive", "value"),
    }
    assert seen["accessLog"] == []  # only the person sees who looked
    for full in (person.email, person.email.lower(), person.phone, person.street):
        assert full.encode() not in r.content
    assert person.postal_code.encode() not in r.content
    for value in person.withheld_markers(catalogue):
        assert value.encode() not in r.content
    [row] = await rows_of(db, r)
    assert (row.action, row.outcome, row.subject_id) == ("subject.read", "allowed", person.id)
    assert row.purpose == ACCESS
    assert row.categories == [
        "profile",
        "identifiers",
        "payment",
        "device",
        "geolocation",
        "sensitive",
        "provided",
    ]


async def test_categories_are_recorded_through_fragments_and_a_missing_subject_too(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    _, token = agent_token(issuer)
    query = """
    query($id: ID!, $access: SupportAccess!) {
      subject(id: $id, access: $access) {
        ...p
        ... on Subject { webAnalytics { edges { cursor } } }
      }
    }
    fragment p on Subject { preferences { language } }
    """
    r = await gql(client, token, query, id=str(person.id), access=ACCESS)
    assert r.json()["data"]["subject"]["preferences"] is not None
    assert [x.categories for x in await rows_of(db, r)] == [["web_analytics", "preferences"]]
    missing = await gql(client, token, READ % "id", id=str(uuid4()), access=ACCESS)
    assert missing.json()["data"] == {"subject": None}
    rows = await rows_of(db, missing)
    assert [(x.action, x.outcome, x.subject_id) for x in rows] == [
        ("subject.read", "allowed", None)
    ]
    bad = await gql(client, token, READ % "id", id="not-a-uuid", access=ACCESS)
    assert bad.json()["errors"][0]["extensions"] == {"code": "INVALID_ARGUMENT"}
    assert [(x.action, x.outcome) for x in await rows_of(db, bad)] == [("subject.read", "denied")]


async def test_unmasking_needs_a_strong_recent_login_and_is_audited_per_field(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    name, _ = agent_token(issuer)
    weak = issuer.mint("support", name, acr="urn:dsar:acr:weak")
    stale = issuer.mint("support", name, acr=STRONG_ACR, auth_time=int(time.time()) - 3600)
    strong = issuer.mint("support", name, acr=STRONG_ACR, auth_time=int(time.time()))
    ask = {"subject": str(person.id), "category": "profile", "field": "email", "access": ACCESS}
    for token in (weak, stale):
        r = await gql(client, token, UNMASK, **ask)
        assert r.json()["data"]["unmaskField"] == {
            "__typename": "StrongerLoginRequired",
            "acrValues": [STRONG_ACR],
            "maxAge": 900,
        }
        assert person.email.encode() not in r.content
        assert [(x.action, x.outcome, x.categories) for x in await rows_of(db, r)] == [
            ("field.unmask", "denied", ["profile.email"])
        ]
    r = await gql(client, strong, UNMASK, **ask)
    assert r.json()["data"]["unmaskField"] == {
        "__typename": "UnmaskedValue",
        "subject": str(person.id),
        "category": "profile",
        "field": "email",
        "record": None,
        "value": person.email,
    }
    [row] = await rows_of(db, r)
    assert (row.action, row.outcome, row.subject_id) == ("field.unmask", "allowed", person.id)
    assert (row.categories, row.purpose) == (["profile.email"], ACCESS)
    assert row.actor == {"kind": "support", "iss": TEST_ISSUER, "sub": name}

    # A category with many records names the record by its id.
    listed = await gql(
        client,
        strong,
        READ % "device(first: 1) { edges { node { id } } }",
        id=str(person.id),
        access=ACCESS,
    )
    record = listed.json()["data"]["subject"]["device"]["edges"][0]["node"]["id"]
    r = await gql(
        client,
        strong,
        UNMASK,
        **{**ask, "category": "device", "field": "ip_address"},
        record=record,
    )
    value = r.json()["data"]["unmaskField"]
    assert value["__typename"] == "UnmaskedValue" and value["value"] == "10.91.0.1"
    assert [x.categories for x in await rows_of(db, r)] == [["device.ip_address"]]

    for wrong, message in [
        ({"category": "device", "field": "ip_address"}, "Name the record"),
        ({"record": 1}, "Name the record"),
        ({"field": "city"}, "not masked"),
        ({"field": "nope"}, "Unknown field"),
        ({"category": "nope"}, "Unknown category"),
        ({"subject": str(uuid4())}, "No such subject"),
        ({"subject": "not-a-uuid"}, "No such subject"),
    ]:
        r = await gql(client, strong, UNMASK, **{**ask, **wrong})
        refused = r.json()["data"]["unmaskField"]
        assert refused["__typename"] == "UnmaskRefused" and message in refused["message"]
        assert [(x.action, x.outcome) for x in await rows_of(db, r)] == [("field.unmask", "denied")]


@pytest.mark.parametrize(
    ("category", "field"),
    [
        ("identifiers", "password_hash"),
        ("identifiers", "security_answer_hash"),
        ("payment", "account_number"),
        ("payment", "routing_number"),
        ("sensitive", "value"),
    ],
)
async def test_a_withheld_value_is_never_unmasked(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    catalogue: Catalogue,
    db: asyncpg.Connection,
    category: str,
    field: str,
) -> None:
    _, token = agent_token(issuer)  # strong and fresh
    r = await gql(
        client,
        token,
        UNMASK,
        subject=str(person.id),
        category=category,
        field=field,
        record=1,
        access=ACCESS,
    )
    refused = r.json()["data"]["unmaskField"]
    assert refused["__typename"] == "UnmaskRefused"
    assert "§7024(d)" in refused["message"]
    for value in person.withheld_markers(catalogue):
        assert value.encode() not in r.content
    assert [(x.action, x.outcome, x.categories) for x in await rows_of(db, r)] == [
        ("field.unmask", "denied", [f"{category}.{field}"])
    ]


async def test_no_withheld_value_leaves_on_any_agent_path(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, catalogue: Catalogue
) -> None:
    _, token = agent_token(issuer)
    responses = [
        await gql(client, token, READ % EVERYTHING, id=str(person.id), access=ACCESS),
        await gql(client, token, FIND % EVERYTHING, email=person.email, access=ACCESS),
        await gql(
            client,
            token,
            EXPORT_FOR,
            subject=str(person.id),
            access=ACCESS,
            input={"format": "CSV"},
            verification=VERIFIED,
        ),
    ]
    for cat in catalogue:
        for f in cat.fields:
            responses.append(
                await gql(
                    client,
                    token,
                    UNMASK,
                    subject=str(person.id),
                    category=cat.key,
                    field=f.name,
                    access=ACCESS,
                )
            )
    planted = person.withheld_markers(catalogue)
    assert len(planted) >= 5
    for r in responses:
        assert r.status_code == 200, r.text
        for value in planted:
            assert value.encode() not in r.content


async def test_other_callers_get_403_and_an_audit_row(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    calls = [
        (READ % "id", {"id": str(person.id), "access": ACCESS}),
        (FIND % "id", {"email": person.email, "access": ACCESS}),
        (
            UNMASK,
            {"subject": str(person.id), "category": "profile", "field": "email", "access": ACCESS},
        ),
        (
            EXPORT_FOR,
            {
                "subject": str(person.id),
                "access": ACCESS,
                "input": {"format": "JSON"},
                "verification": VERIFIED,
            },
        ),
    ]
    for token in (issuer.mint("customer", person.handle), issuer.mint("partner", "partner-x")):
        for query, variables in calls:
            r = await gql(client, token, query, **variables)
            assert r.status_code == 403
            assert 'scope="support:read"' in r.headers["www-authenticate"]
            assert person.email.encode() not in r.content
            assert [(x.action, x.outcome) for x in await rows_of(db, r)] == [
                ("access.denied", "denied")
            ]


async def test_a_partner_token_carrying_the_support_scope_is_still_a_partner(
    app: Starlette, person: Person, db: asyncpg.Connection
) -> None:
    services: Services = app.state.services
    partner = Partner(TEST_ISSUER, "sneaky", frozenset({"portability:pull", "support:read"}))
    rid = f"test-{uuid4().hex}"
    context = Context(services, partner, rid)
    result = await app.state.schema.execute(
        READ % PROFILE,
        variable_values={"id": str(person.id), "access": ACCESS},
        context_value=context,
    )
    assert result.data == {"subject": None} and context.http_status == 403
    assert [e.message for e in result.errors] == ["Not allowed for this caller."]
    rows = await rows_where(db, "request_id = $1", rid)
    assert [(x.action, x.outcome, x.actor["kind"]) for x in rows] == [
        ("access.denied", "denied", "partner")
    ]


async def test_no_data_when_the_audit_row_cannot_be_written(
    settings: Settings, catalogue: Catalogue, stores: Stores, deployment: Deployment, person: Person
) -> None:
    broken = await create_pool(deployment.service_dsn)
    await broken.close()  # every audit insert now fails
    services = Services(settings.rules(), catalogue, stores, broken, Leases("unused"))
    schema = build_schema(catalogue)
    agent = SupportAgent(TEST_ISSUER, "agent-x", frozenset({"support:read"}))
    for query, variables in [
        (READ % EVERYTHING, {"id": str(person.id), "access": ACCESS}),
        (FIND % EVERYTHING, {"email": person.email, "access": ACCESS}),
    ]:
        context = Context(services, agent, f"test-{uuid4().hex}")
        result = await schema.execute(query, variable_values=variables, context_value=context)
        assert result.data in ({"subject": None}, None)
        assert result.errors is not None
        assert result.errors[0].extensions == {"code": "AUDIT_UNAVAILABLE"}
        assert (context.http_status, context.http_headers) == (503, {"Retry-After": "5"})
        assert person.marker not in orjson.dumps(result.data).decode()


@pytest.fixture
async def limited(
    settings: Settings, deployment: Deployment, stores: Stores, issuer: DevIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose agents may look at two different people an hour."""
    application = create_app(
        replace(settings, support_subjects_per_hour=2),
        key_sources={TEST_ISSUER: issuer.key_set()},
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def test_past_the_hourly_limit_of_people_an_agent_gets_429(
    limited: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    a, b, c = [await new_person(stores, catalogue) for _ in range(3)]
    why = {p.id: ticket() for p in (a, b, c)}  # one ticket per person
    _, token = agent_token(issuer)
    for p in (a, b, a, b):  # the same people again do not count twice
        r = await gql(limited, token, READ % "id", id=str(p.id), access=why[p.id])
        assert r.status_code == 200 and r.json()["data"]["subject"]["id"] == str(p.id)
    r = await gql(limited, token, READ % PROFILE, id=str(c.id), access=why[c.id])
    assert r.status_code == 429
    error = r.json()["errors"][0]
    assert error["extensions"]["code"] == "SUPPORT_LIMIT_REACHED"
    assert 3500 < error["extensions"]["retryAfter"] <= 3600
    assert r.headers["retry-after"] == str(error["extensions"]["retryAfter"])
    assert r.json()["data"] == {"subject": None}
    assert [(x.action, x.outcome, x.subject_id) for x in await rows_of(db, r)] == [
        ("subject.read", "denied", c.id)
    ]
    found = await gql(limited, token, FIND % "id", email=c.email, access=why[c.id])
    assert found.status_code == 429 and found.json()["data"] is None
    assert c.email.encode() not in found.content
    unmask = await gql(
        limited,
        token,
        UNMASK,
        subject=str(c.id),
        category="profile",
        field="email",
        access=why[c.id],
    )
    assert unmask.status_code == 429
    assert unmask.json()["data"]["unmaskField"]["__typename"] == "SupportLimitReached"
    # Looking at someone already seen this hour still works; another agent is not affected.
    again = await gql(limited, token, READ % "id", id=str(a.id), access=why[a.id])
    assert again.status_code == 200
    _, other = agent_token(issuer)
    assert (
        await gql(limited, other, READ % "id", id=str(c.id), access=why[c.id])
    ).status_code == 200


async def test_looks_that_find_no_one_count_towards_the_limit_and_raise_the_alert(
    limited: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    db: asyncpg.Connection,
) -> None:
    """Probing made-up subject ids (or addresses) is not free: each miss takes a slot of the
    agent's hour, and counts in dsar_support_misses_total, the metric to alert on."""
    name, token = agent_token(issuer)
    before = misses(await limited.get("/metrics"))
    probe = await gql(limited, token, READ % "id", id=str(uuid4()), access=ticket())
    assert probe.status_code == 200 and probe.json()["data"] == {"subject": None}
    nobody = await gql(
        limited, token, FIND % "id", email=f"{uuid4().hex}@nowhere.test", access=ticket()
    )
    assert nobody.status_code == 200 and nobody.json()["data"] == {"findSubjects": []}
    assert misses(await limited.get("/metrics")) == before + 2

    # Two misses used the hour (two a hour here): a real person is now past the limit too.
    r = await gql(limited, token, READ % "id", id=str(person.id), access=ticket())
    assert r.status_code == 429, r.json()
    assert r.json()["errors"][0]["extensions"]["code"] == "SUPPORT_LIMIT_REACHED"
    assert 3500 < r.json()["errors"][0]["extensions"]["retryAfter"] <= 3600
    again = await gql(limited, token, READ % "id", id=str(uuid4()), access=ticket())
    assert again.status_code == 429
    rows = await rows_where(db, "actor->>'sub' = $1", name)
    assert [(x.action, x.outcome, x.subject_id) for x in rows] == [
        ("subject.read", "allowed", None),
        ("subject.find", "allowed", None),
        ("subject.read", "denied", person.id),
        ("subject.read", "denied", None),
    ]
    # A refused look found nothing, but it is the limit's to count, not the alert's.
    assert misses(await limited.get("/metrics")) == before + 2


def misses(metrics: httpx.Response) -> float:
    for line in metrics.text.splitlines():
        if line.startswith("dsar_support_misses_total "):
            return float(line.split()[1])
    raise AssertionError("no dsar_support_misses_total in /metrics")


async def test_concurrent_looks_cannot_overrun_the_limit(
    limited: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    people = [await new_person(stores, catalogue) for _ in range(6)]
    name, token = agent_token(issuer)
    answers = await asyncio.gather(
        *(gql(limited, token, READ % "id", id=str(p.id), access=ticket()) for p in people)
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 429, 429, 429, 429]
    allowed = await rows_where(db, "actor->>'sub' = $1 AND outcome = 'allowed'", name)
    assert len({x.subject_id for x in allowed}) == 2


async def test_an_agent_opens_an_export_that_only_the_person_can_download(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    name, token = agent_token(issuer)
    r = await gql(
        client,
        token,
        EXPORT_FOR,
        subject=str(person.id),
        access=ACCESS,
        input={"format": "CSV", "categories": ["profile", "device"]},
        verification=VERIFIED,
    )
    opened = r.json()["data"]["requestExportFor"]
    assert opened["__typename"] == "OpenedExport", r.text
    assert (opened["status"], opened["format"], opened["categories"]) == (
        "READY",
        "CSV",
        ["profile", "device"],
    )
    assert b"/exports/" not in r.content
    # No field could carry a link to the agent, and the link itself is the person's alone.
    link = await gql(
        client,
        token,
        EXPORT_FOR.replace("categories createdAt", "categories downloadUrl createdAt"),
        subject=str(person.id),
        access=ACCESS,
        input={"format": "CSV"},
        verification=VERIFIED,
    )
    # No such field: a request error (200 with no `data` under application/json).
    assert link.status_code == 200
    assert "data" not in link.json()
    assert link.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await client.get(f"/exports/{opened['id']}", headers=auth(token))).status_code == 404
    query = "query($id: ID!) { export(id: $id) { id } }"
    assert (await gql(client, token, query, id=opened["id"])).json()["data"]["export"] is None

    customer = issuer.mint("customer", person.handle)
    mine = await gql(client, customer, "{ exports { id downloadUrl } }")
    [listed] = [e for e in mine.json()["data"]["exports"] if e["id"] == opened["id"]]
    download = await client.get(listed["downloadUrl"], headers=auth(customer))
    assert download.status_code == 200
    manifest = orjson.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("manifest.json"))
    assert manifest["subject_id"] == str(person.id)

    row = await db.fetchrow(
        "SELECT requested_by::text, recipient::text, verification::text FROM exports WHERE id = $1",
        UUID(opened["id"]),
    )
    assert orjson.loads(row["requested_by"]) == {"kind": "support", "iss": TEST_ISSUER, "sub": name}
    assert orjson.loads(row["recipient"]) == {"kind": "subject"}
    verification = orjson.loads(row["verification"])
    assert verification["identity_verified_by"] == "email_confirmed"
    assert verification["verified_by"] == {"kind": "support", "iss": TEST_ISSUER, "sub": name}
    assert verification["note"] == VERIFIED["note"]
    # The request it opens is received first, then the export: both name the request.
    received, audited = await rows_of(db, r)
    request = await db.fetchval("SELECT request_id FROM exports WHERE id = $1", UUID(opened["id"]))
    assert (received.action, received.subject_id) == ("request.receive", person.id)
    assert received.purpose == {"request": str(request), "channel": "support"}
    assert (audited.action, audited.outcome, audited.subject_id) == (
        "export.request",
        "allowed",
        person.id,
    )
    assert audited.purpose == {
        **ACCESS,
        "export_id": opened["id"],
        "request": str(request),
        "verification": "email_confirmed",
    }
    assert audited.categories == ["profile", "device"]


async def test_an_agent_export_is_refused_when_it_cannot_be_met(
    client: httpx.AsyncClient, issuer: DevIssuer, person: Person, db: asyncpg.Connection
) -> None:
    _, token = agent_token(issuer)

    async def ask(subject: str, note: str | None = None, **input: Any) -> httpx.Response:
        return await gql(
            client,
            token,
            EXPORT_FOR,
            subject=subject,
            access=ACCESS,
            input={"format": "JSON", **input},
            verification={"method": "ID_DOCUMENT", "note": note},
        )

    for r, message in [
        (await ask(str(person.id), "Passport number 5123 4567 seen"), "Leave document"),
        (await ask(str(person.id), "ID card X-12-34-56"), "Leave document"),
        (await ask(str(uuid4())), "No such subject."),
        (await ask("nope"), "No such subject."),
        (await ask(str(person.id), categories=["nope"]), "Unknown category."),
    ]:
        refused = r.json()["data"]["requestExportFor"]
        assert refused["__typename"] == "InvalidExportRequest"
        assert refused["message"].startswith(message)
        assert b"5123" not in r.content
        assert [(x.action, x.outcome) for x in await rows_of(db, r)] == [
            ("export.request", "denied")
        ]
    # An agent's exports count towards the person's own daily limit, and the other way round.
    for key in ["profile", "identifiers", "payment", "device", "web_analytics"]:
        r = await ask(str(person.id), "Checked on a video call", categories=[key])
        assert r.json()["data"]["requestExportFor"]["__typename"] == "OpenedExport"
    r = await ask(str(person.id), categories=["geolocation"])
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 86_000
    assert r.json()["data"]["requestExportFor"]["__typename"] == "ExportLimitReached"
    own = await gql(
        client,
        issuer.mint("customer", person.handle),
        "mutation { requestExport(input: {format: CSV}) { __typename } }",
    )
    assert own.status_code == 429


async def test_the_person_sees_who_looked_by_kind_and_ticket(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: Person,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    name, token = agent_token(issuer)
    looked = await gql(
        client,
        token,
        READ % "profile { email }",
        id=str(person.id),
        access={"ticket": "HELP-77", "reason": "Asked which address we have"},
    )
    assert looked.status_code == 200
    partner = f"partner-{uuid4().hex[:8]}"
    await add_partner(
        db, catalogue, client_id=partner, issuer=TEST_ISSUER, name="P", categories=["profile"]
    )
    customer = issuer.mint("customer", person.handle)
    grant = """mutation($p: String!) { grantPortability(input: {partner: $p,
               categories: ["profile"]}) { ... on PortabilityGrant { id } } }"""
    granted = (await gql(client, customer, grant, p=partner)).json()["data"]["grantPortability"]
    start = "mutation($g: ID!) { startTransfer(grant: $g) { __typename } }"
    started = await gql(client, issuer.mint("partner", partner), start, g=granted["id"])
    assert started.json()["data"]["startTransfer"]["__typename"] == "Export"

    r = await gql(
        client,
        customer,
        "{ me { accessLog { at by partner ticket action outcome categories } } }",
    )
    log = r.json()["data"]["me"]["accessLog"]
    assert [(e["by"], e["partner"], e["ticket"], e["action"], e["categories"]) for e in log] == [
        ("PARTNER", partner, None, "transfer.start", ["profile"]),
        ("SUPPORT", None, "HELP-77", "subject.read", ["profile"]),
    ]
    assert all(e["outcome"] == "allowed" and e["at"] for e in log)
    assert name.encode() not in r.content  # never the agent's identity
    assert b"Asked which address" not in r.content


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("email", "alice@example.com", "a***@e***.com"),
        ("email", "Bob.Smith@mail.example.co.uk", "B***@m***.uk"),
        ("email", "root@localhost", "r***@l***"),
        ("email", "no-at-sign", "***"),
        ("phone", "+1 (555) 010-4467", "*** 67"),
        ("phone", "none given", "***"),
        ("initial", "Smith", "S."),
        ("hidden", "12 Main Street", None),
        ("none", "Springfield", "Springfield"),
    ],
)
def test_masks_keep_enough_to_match_a_person_and_no_more(
    kind: str, value: str, masked: str | None
) -> None:
    assert mask(kind, value) == masked


async def test_a_ticket_covers_the_person_it_was_first_used_for(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    stores: Stores,
    catalogue: Catalogue,
    db: asyncpg.Connection,
) -> None:
    a, b = [await new_person(stores, catalogue) for _ in range(2)]
    why = ticket()
    _, token = agent_token(issuer, auth_time=int(time.time()))
    first = await gql(client, token, READ % "id", id=str(a.id), access=why)
    assert first.json()["data"]["subject"]["id"] == str(a.id)

    other = await gql(client, token, READ % PROFILE, id=str(b.id), access=why)
    found = await gql(client, token, FIND % PROFILE, email=b.email, access=why)
    unmask = await gql(
        client,
        token,
        UNMASK,
        subject=str(b.id),
        category="profile",
        field="email",
        access=why,
    )
    export = await gql(
        client,
        token,
        EXPORT_FOR,
        subject=str(b.id),
        access=why,
        input={"format": "JSON"},
        verification=VERIFIED,
    )
    message = "This ticket is about someone else: open a ticket for this person."
    for r in (other, found):
        assert r.json()["errors"][0]["message"] == message
        assert r.json()["errors"][0]["extensions"] == {"code": "INVALID_SUPPORT_ACCESS"}
    assert unmask.json()["data"]["unmaskField"] == {
        "__typename": "InvalidSupportAccess",
        "message": message,
    }
    assert export.json()["data"]["requestExportFor"]["__typename"] == "InvalidSupportAccess"
    for r in (other, found, unmask, export):
        assert b.marker.encode() not in r.content and b.email.encode() not in r.content
        assert [x.outcome for x in await rows_of(db, r)] == ["denied"]
    # The person it covers, by any agent of the help desk; another person, with their own.
    _, colleague = agent_token(issuer)
    again = await gql(client, colleague, READ % "id", id=str(a.id), access=why)
    assert again.json()["data"]["subject"]["id"] == str(a.id)
    own = await gql(client, token, READ % "id", id=str(b.id), access=ticket())
    assert own.json()["data"]["subject"]["id"] == str(b.id)
