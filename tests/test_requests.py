"""Requests as cases: every channel opens one, its dates follow the jurisdiction, and every
step of its timeline is an audit row written with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import CatalogueError, Period, load_request_rules
from domain import deadlines
from domain.partners import add_partner
from stores.deployment import Deployment
from stores.registry import Stores
from stores.scope import Scope, bind
from stores.seed import build_subject, insert_subject, subject_id
from tests._cli import cli_env, run_cli
from tests._factories import insert_marked
from tests._gql import auth
from tests._gql import data as gql
from tests._tokens import TEST_ISSUER
from tests.reliability._server import stores_toml

RULES = load_request_rules()
REQUEST = """mutation { requestExport(input: {format: JSON}) {
  __typename ... on Export { id downloadUrl } } }"""
MINE = """{ me { requests { id kind channel status jurisdiction receivedAt acknowledgeBy
  acknowledgedAt dueAt extendedTo closedAt exports
  verification { method degree verifiedAt } timeline { at step by outcome } } } }"""
EXPORT_FOR = """
mutation($subject: ID!, $access: SupportAccess!) {
  requestExportFor(subject: $subject, access: $access, input: {format: JSON},
                   verification: {method: EMAIL_CONFIRMED}) {
    __typename ... on OpenedExport { id status }
  }
}
"""
GRANT = """mutation($input: GrantInput!) { grantPortability(input: $input) {
  __typename ... on PortabilityGrant { id } } }"""
START = "mutation($grant: ID!) { startTransfer(grant: $grant) { __typename ... on Export { id } } }"


@pytest.fixture
async def person(stores: Stores, catalogue: Any) -> str:
    handle = f"req-{uuid4().hex[:10]}"
    await insert_marked(stores, catalogue, handle, f"R{uuid4().hex[:8]}", 81)
    return handle


async def steps_in_audit_log(owner_db: asyncpg.Connection, request: str) -> list[str]:
    rows = await owner_db.fetch(
        "SELECT action FROM audit_log WHERE purpose->>'request' = $1 ORDER BY seq", request
    )
    return [r["action"] for r in rows]


# ── Deadlines ───────────────────────────────────────────────────────────────────────────────


def at(day: str, hour: int = 12, tz: str = "UTC") -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), ZoneInfo(tz)).replace(
        hour=hour
    )


def test_gdpr_counts_a_calendar_month_to_the_same_date_or_the_months_last_day() -> None:
    d = deadlines.dates(RULES, "GDPR", at("2026-03-15"), "UTC")
    assert d.due_at == datetime(2026, 4, 15, 23, 59, 59, 999999, ZoneInfo("UTC"))
    # 31 January: February has no 31st, so its last day (2028 is a leap year).
    assert deadlines.dates(RULES, "GDPR", at("2026-01-31"), "UTC").due_at.date() == date(
        2026, 2, 28
    )
    assert deadlines.dates(RULES, "GDPR", at("2028-01-31"), "UTC").due_at.date() == date(
        2028, 2, 29
    )
    # Extended by two further months from the first date.
    assert d.extend_limit.date() == date(2026, 6, 15)


def test_ccpa_counts_45_calendar_days_and_45_more() -> None:
    d = deadlines.dates(RULES, "CCPA", at("2026-03-15"), "UTC")
    assert d.due_at.date() == date(2026, 4, 29)
    assert d.extend_limit.date() == date(2026, 6, 13)


def test_an_unknown_jurisdiction_takes_the_earliest_date_of_each() -> None:
    # One month is shorter than 45 days; the 90 days of the CCPA end before three months.
    d = deadlines.dates(RULES, "UNKNOWN", at("2026-03-15"), "UTC")
    assert d.due_at.date() == date(2026, 4, 15)
    assert d.extend_limit.date() == date(2026, 6, 13)
    # A jurisdiction the file does not know is UNKNOWN.
    assert deadlines.dates(RULES, "XX", at("2026-03-15"), "UTC") == d


def test_receipt_is_confirmed_within_10_business_days() -> None:
    # Friday 6 March 2026: two weekends fall inside, so the 10th business day is 20 March.
    d = deadlines.dates(RULES, "CCPA", at("2026-03-06"), "UTC")
    assert d.acknowledge_by.date() == date(2026, 3, 20)
    assert d.acknowledge_by.weekday() < 5


def test_dates_are_counted_in_the_persons_time_zone() -> None:
    # 23:30 UTC on 31 March is already 1 April in Berlin: the month runs to 1 May there.
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    berlin = deadlines.dates(RULES, "GDPR", late, "Europe/Berlin")
    assert berlin.due_at.tzinfo == ZoneInfo("Europe/Berlin")
    assert berlin.due_at.date() == date(2026, 5, 1)
    assert deadlines.dates(RULES, "GDPR", late, "UTC").due_at.date() == date(2026, 4, 30)
    # A zone that is not one is UTC.
    assert deadlines.dates(RULES, "GDPR", late, "Mars/Olympus").due_at.date() == date(2026, 4, 30)


def test_business_days_skip_weekends() -> None:
    assert deadlines.add(date(2026, 3, 6), Period("business_days", 1)) == date(2026, 3, 9)
    assert deadlines.add(date(2026, 3, 7), Period("business_days", 1)) == date(2026, 3, 9)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "[acknowledge]\nlaw='x'\nperiod={days=1}\n[deadlines.GDPR]\nlaw='x'\n"
            "respond={months=1}\nextend={months=2}\n",
            "no UNKNOWN",
        ),
        (
            "[acknowledge]\nlaw='x'\nperiod={weeks=1}\n[deadlines.UNKNOWN]\nlaw='x'\n"
            "respond={days=1}\nextend={days=1}\n",
            "unknown key 'weeks'",
        ),
        (
            "[acknowledge]\nlaw='x'\nperiod={days=0}\n[deadlines.UNKNOWN]\nlaw='x'\n"
            "respond={days=1}\nextend={days=1}\n",
            "whole number",
        ),
        (
            "[acknowledge]\nlaw='x'\nperiod={days=1}\n[deadlines.UNKNOWN]\nlaw='x'\n"
            "stricter_of=['GDPR']\n",
            "stricter_of names 'GDPR'",
        ),
        (
            "[acknowledge]\nlaw='x'\nperiod={days=1}\n[deadlines.gdpr]\nlaw='x'\n"
            "respond={days=1}\nextend={days=1}\n",
            "not a valid key",
        ),
    ],
)
def test_a_bad_requests_file_is_refused_in_one_line(tmp_path: Path, text: str, says: str) -> None:
    f = tmp_path / "requests.toml"
    f.write_text(text)
    with pytest.raises(CatalogueError) as caught:
        load_request_rules(f)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


# ── Every channel opens a request ───────────────────────────────────────────────────────────


async def test_an_account_export_is_a_request_answered_by_its_download(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, owner_db: asyncpg.Connection
) -> None:
    token = issuer.mint("customer", person)
    export = (await gql(client, token, REQUEST))["requestExport"]
    (req,) = (await gql(client, token, MINE))["me"]["requests"]
    assert req["kind"] == "ACCESS" and req["channel"] == "ACCOUNT"
    assert req["status"] == "IN_PROGRESS"
    assert req["exports"] == [export["id"]]
    assert req["verification"]["method"] == "oidc_login"
    assert req["verification"]["degree"] == "REASONABLY_HIGH"
    # No jurisdiction is recorded for this person: the stricter dates (one calendar month).
    assert req["jurisdiction"] == "UNKNOWN"
    received = datetime.fromisoformat(req["receivedAt"])
    assert req["acknowledgedAt"] == req["receivedAt"]
    want = deadlines.dates(RULES, "UNKNOWN", received, "UTC")
    assert datetime.fromisoformat(req["dueAt"]) == want.due_at
    assert datetime.fromisoformat(req["acknowledgeBy"]) == want.acknowledge_by
    assert [s["step"] for s in req["timeline"]] == ["RECEIVED", "EXPORT_OPENED"]

    # Asking again while the first is not downloaded returns it: still one request.
    again = (await gql(client, token, REQUEST))["requestExport"]
    assert again["id"] == export["id"]

    r = await client.get(export["downloadUrl"], headers=auth(token))
    assert r.status_code == 200
    (req,) = (await gql(client, token, MINE))["me"]["requests"]
    assert req["status"] == "COMPLETED" and req["closedAt"] is not None
    steps = [s["step"] for s in req["timeline"]]
    assert steps == [
        "RECEIVED",
        "EXPORT_OPENED",
        "EXPORT_OPENED",
        "DOWNLOADED",
        "SENT",
        "COMPLETED",
    ]
    assert [s["by"] for s in req["timeline"]][-1] == "service"
    # Every step shown is an audit row naming the request, in order.
    assert await steps_in_audit_log(owner_db, req["id"]) == [
        "request.receive",
        "export.request",
        "export.request",
        "export.download",
        "export.sent",
        "request.complete",
    ]


async def test_a_support_agents_export_is_a_support_request(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, owner_db: asyncpg.Connection
) -> None:
    sid = str(subject_id(person))
    access = {"ticket": f"REQ-{uuid4().int % 10**9}", "reason": "The customer asked by phone."}
    opened = await gql(
        client, issuer.mint("support", "agent-req"), EXPORT_FOR, subject=sid, access=access
    )
    assert opened["requestExportFor"]["__typename"] == "OpenedExport"
    (req,) = (await gql(client, issuer.mint("customer", person), MINE))["me"]["requests"]
    # Recordings and correspondence wait for privacy staff's review (catalogue [review]).
    assert req["channel"] == "SUPPORT" and req["status"] == "IN_REVIEW"
    assert req["verification"]["method"] == "support_agent:email_confirmed"
    assert req["exports"] == [opened["requestExportFor"]["id"]]
    assert [(s["step"], s["by"]) for s in req["timeline"]] == [
        ("RECEIVED", "support"),
        ("HELD_FOR_REVIEW", "service"),
        ("EXPORT_OPENED", "support"),
    ]
    row = await owner_db.fetchrow(
        "SELECT requested_by FROM requests WHERE id = $1", UUID(req["id"])
    )
    assert orjson.loads(row["requested_by"]) == {
        "kind": "support",
        "iss": TEST_ISSUER,
        "sub": "agent-req",
    }


async def test_a_partner_transfer_is_a_partner_request(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    owner_db: asyncpg.Connection,
    catalogue: Any,
) -> None:
    partner = f"partner-{uuid4().hex[:8]}"
    await add_partner(
        owner_db,
        catalogue,
        client_id=partner,
        issuer=TEST_ISSUER,
        name=partner,
        categories=["profile"],
    )
    customer = issuer.mint("customer", person)
    grant = (
        await gql(client, customer, GRANT, input={"partner": partner, "categories": ["profile"]})
    )["grantPortability"]
    started = await gql(client, issuer.mint("partner", partner), START, grant=grant["id"])
    transfer = started["startTransfer"]["id"]
    (req,) = (await gql(client, customer, MINE))["me"]["requests"]
    assert req["channel"] == "PARTNER" and req["kind"] == "PORTABILITY"
    assert req["exports"] == [transfer]
    assert [s["step"] for s in req["timeline"]] == ["RECEIVED", "TRANSFER_OPENED"]


async def test_a_cli_export_leaves_a_request_naming_the_operator_and_its_audit_rows(
    settings: Settings, deployment: Deployment, tmp_path: Path, owner_db: asyncpg.Connection
) -> None:
    stores_file = tmp_path / "stores.toml"
    stores_file.write_text(stores_toml(deployment.stores))
    operator = f"op-{uuid4().hex[:6]}"
    env = cli_env(settings, tmp_path, DSAR_STORES=str(stores_file))
    out = tmp_path / "bob.zip"
    result = await asyncio.to_thread(
        run_cli,
        "export",
        "bob",
        "--format",
        "csv",
        "--operator",
        operator,
        "--no-progress",
        "-o",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
    row = await owner_db.fetchrow(
        "SELECT * FROM requests WHERE requested_by->>'user' = $1", operator
    )
    assert row is not None
    assert row["channel"] == "cli" and row["status"] == "completed"
    assert row["subject_id"] == subject_id("bob")
    assert orjson.loads(row["requested_by"]) == {"kind": "operator", "user": operator}
    assert row["verification_method"] == "operator" and row["verification_degree"] is None
    assert await steps_in_audit_log(owner_db, str(row["id"])) == [
        "request.receive",
        "request.complete",
    ]
    actors = await owner_db.fetch(
        "SELECT actor FROM audit_log WHERE purpose->>'request' = $1", str(row["id"])
    )
    assert {orjson.loads(a["actor"])["user"] for a in actors} == {operator}


async def test_an_export_does_not_stand_without_its_requests_audit_row(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, owner_db: asyncpg.Connection
) -> None:
    # The receipt row is refused by the log (a malformed purpose cannot be the way: make the
    # log itself refuse every row of the request's action for a moment).
    await owner_db.execute(
        """CREATE OR REPLACE FUNCTION test_refuse_receipts() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN IF NEW.action = 'request.receive' THEN
               RAISE EXCEPTION 'refused' USING ERRCODE = 'insufficient_privilege'; END IF;
               RETURN NEW; END $$"""
    )
    await owner_db.execute(
        "CREATE TRIGGER test_refuse_receipts BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse_receipts()"
    )
    try:
        token = issuer.mint("customer", person)
        r = await client.post("/graphql", json={"query": REQUEST}, headers=auth(token))
    finally:
        await owner_db.execute("DROP TRIGGER test_refuse_receipts ON audit_log")
        await owner_db.execute("DROP FUNCTION test_refuse_receipts()")
    assert r.status_code == 503
    sid = subject_id(person)
    assert await owner_db.fetchval("SELECT count(*) FROM requests WHERE subject_id = $1", sid) == 0
    assert await owner_db.fetchval("SELECT count(*) FROM exports WHERE subject_id = $1", sid) == 0


async def test_another_person_sees_none_of_them(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, stores: Stores, catalogue: Any
) -> None:
    await gql(client, issuer.mint("customer", person), REQUEST)
    other = f"req-{uuid4().hex[:10]}"
    await insert_marked(stores, catalogue, other, f"O{uuid4().hex[:8]}", 82)
    assert (await gql(client, issuer.mint("customer", other), MINE))["me"]["requests"] == []


def test_dates_are_never_before_receipt() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(0, 400, 7):
        received = start + timedelta(days=n, hours=n % 24)
        for j in ("GDPR", "CCPA", "UNKNOWN"):
            d = deadlines.dates(RULES, j, received, "America/Los_Angeles")
            assert received < d.acknowledge_by
            assert received < d.due_at < d.extend_limit


def test_every_jurisdiction_of_the_catalogue_has_its_deadlines(catalogue: Any) -> None:
    for j in catalogue.jurisdictions:
        assert j.key in RULES.deadlines, j.key


async def test_the_due_date_follows_the_persons_jurisdiction(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores, catalogue: Any
) -> None:
    # The company's records say this person lives in California.
    handle = f"req-{uuid4().hex[:10]}"
    data = build_subject(handle, full=True, sensitive=False)
    data.rows["profile"][0].update(country="US", region="CA")
    data.logins.append((TEST_ISSUER, handle))
    await insert_subject(stores, catalogue, data)
    token = issuer.mint("customer", handle)
    await gql(client, token, REQUEST)
    (req,) = (await gql(client, token, MINE))["me"]["requests"]
    assert req["jurisdiction"] == "CCPA"
    received = datetime.fromisoformat(req["receivedAt"])
    due = datetime.fromisoformat(req["dueAt"])
    assert due == deadlines.dates(RULES, "CCPA", received, "UTC").due_at
    assert due.date() == received.date() + timedelta(days=45)


async def test_the_service_role_sees_a_request_only_bound_to_its_person_or_a_reason(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, deployment: Deployment
) -> None:
    await gql(client, issuer.mint("customer", person), REQUEST)
    sid = subject_id(person)
    other = subject_id(f"req-{uuid4().hex[:10]}")
    service = await asyncpg.connect(deployment.service_dsn)  # the role the API runs as
    try:
        count = "SELECT count(*) FROM requests WHERE subject_id = $1"
        assert await service.fetchval(count, sid) == 0  # bound to no one: nothing
        for who, scope, seen in ((sid, None, 1), (other, None, 0), (None, Scope.STAFF, 1)):
            async with service.transaction():
                await bind(service, subject=who, scope=scope)
                assert await service.fetchval(count, sid) == seen
        async with service.transaction():
            await bind(service, subject=other)  # someone else's request cannot be touched
            done = await service.execute("UPDATE requests SET status = 'withdrawn' WHERE true")
            assert done == "UPDATE 0"
        async with service.transaction():
            await bind(service, subject=sid)  # nor handed to someone else
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await service.execute("UPDATE requests SET subject_id = $1", other)
    finally:
        await service.close()
