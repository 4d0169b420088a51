"""Privacy staff work the queue; the person is told by e-mail, through a real SMTP server
running in this test process (aiosmtpd), and never sent their data."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from domain.notices import BASIS_TEXT, RefusalBasis
from stores.registry import Stores
from stores.seed import build_subject, insert_subject, subject_id
from tests._cli import cli_env, run_cli
from tests._gql import auth
from tests._gql import data as gql
from tests._mail import body_of, eventually
from tests._policy import POLICY
from tests._tokens import TEST_ISSUER

REQUEST = "mutation { requestExport(input: {format: JSON}) { __typename ... on Export { id } } }"
MINE = "{ me { requests { id status dueAt extendedTo } } }"
FIELDS = """id kind channel status jurisdiction receivedAt dueAt extendedTo extensionReason
  closedAt verification { method degree } timeline { step by }"""
QUEUE = f"""query($status: RequestStatus, $overdue: Boolean, $first: Int, $after: String) {{
  requests(status: $status, overdue: $overdue, first: $first, after: $after) {{
    edges {{ cursor node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
ONE = f"query($id: ID!) {{ request(id: $id) {{ {FIELDS} }} }}"
EXTEND = f"""mutation($id: ID!, $reason: String!) {{ extendRequest(id: $id, reason: $reason) {{
  __typename ... on Request {{ {FIELDS} }} ... on RequestRefused {{ message }} }} }}"""
REFUSE = f"""mutation($id: ID!, $reason: String!, $basis: RefusalBasis!) {{
  refuseRequest(id: $id, reason: $reason, basis: $basis) {{
  __typename ... on Request {{ {FIELDS} }} ... on RequestRefused {{ message }} }} }}"""
VERIFY = f"""mutation($id: ID!, $note: String) {{
  verifyRequest(id: $id, method: ID_DOCUMENT, note: $note) {{
  __typename ... on Request {{ {FIELDS} }} ... on RequestRefused {{ message }} }} }}"""
EXPORT_FOR = """
mutation($subject: ID!, $access: SupportAccess!) {
  requestExportFor(subject: $subject, access: $access, input: {format: JSON},
                   verification: {method: EMAIL_CONFIRMED}) {
    __typename ... on OpenedExport { id } }
}
"""


@pytest.fixture
def client(mail_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return mail_client


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue) -> tuple[str, str]:
    """A person of this test alone, and their address in the company's records."""
    handle = f"case-{uuid4().hex[:10]}"
    data = build_subject(handle, full=True, sensitive=False)
    data.logins.append((TEST_ISSUER, handle))
    await insert_subject(stores, catalogue, data)
    return handle, str(data.rows["profile"][0]["email"])


async def opened(client: httpx.AsyncClient, issuer: DevIssuer, handle: str) -> str:
    token = issuer.mint("customer", handle)
    await gql(client, token, REQUEST)
    (req,) = (await gql(client, token, MINE))["me"]["requests"]
    return str(req["id"])


def policy_sentence(start: str) -> str:
    text = " ".join(POLICY.read_text(encoding="utf-8").split())
    i = text.index(start)
    return text[i : text.index(".", i) + 1]


async def test_an_extension_moves_the_date_once_and_emails_the_reason(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str], inbox: Any
) -> None:
    handle, address = person
    rid = await opened(client, issuer, handle)
    staff = issuer.mint("staff", "privacy-1")
    reason = "Your data sits in several archived systems we must restore first."
    done = (await gql(client, staff, EXTEND, id=rid, reason=reason))["extendRequest"]
    assert done["__typename"] == "Request"
    # UNKNOWN jurisdiction: the earliest of GDPR's three months and the CCPA's 90 days.
    received = datetime.fromisoformat(done["receivedAt"])
    extended = datetime.fromisoformat(done["extendedTo"])
    assert 88 <= (extended - received).days <= 90
    assert done["extensionReason"] == reason
    assert [s["step"] for s in done["timeline"]][-1] == "EXTENDED"
    assert done["timeline"][-1]["by"] == "staff"
    # The person sees the new date too.
    (mine,) = (await gql(client, issuer.mint("customer", handle), MINE))["me"]["requests"]
    assert mine["extendedTo"] == done["extendedTo"]

    (message,) = await eventually(lambda: inbox[0].to(address))
    assert message["Subject"] == "We need more time for your request"
    assert message["From"] == "privacy@ontra.test"
    text = body_of(message)
    assert reason in text and rid in text
    assert f"{extended.day} {extended.strftime('%B %Y')}" in text
    assert policy_sentence("You have the right to lodge a complaint") in " ".join(text.split())

    again = (await gql(client, staff, EXTEND, id=rid, reason=reason))["extendRequest"]
    assert again == {
        "__typename": "RequestRefused",
        "message": "The request was extended already; the law allows it once.",
    }
    short = (await gql(client, staff, EXTEND, id=rid, reason="busy"))["extendRequest"]
    assert short["__typename"] == "RequestRefused"


async def test_no_extension_once_the_first_date_has_passed(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str], owner_db: Any
) -> None:
    rid = await opened(client, issuer, person[0])
    await owner_db.execute(
        """UPDATE requests SET received_at = received_at - interval '60 days',
                               acknowledge_by = acknowledge_by - interval '60 days',
                               due_at = due_at - interval '60 days' WHERE id = $1""",
        UUID(rid),
    )
    staff = issuer.mint("staff", "privacy-1")
    late = await gql(client, staff, EXTEND, id=rid, reason="We need to look in the archive.")
    assert late["extendRequest"]["__typename"] == "RequestRefused"
    assert "first due date has passed" in late["extendRequest"]["message"]


@pytest.mark.parametrize(
    "reason",
    [
        "Restoring archives; she wrote from dana.w@example.net to ask.",
        "Waiting on the bank about account DE89 3704 0044 0532 0130 00.",
        "Identity checked against SSN 123-45-6789 on the phone.",
    ],
)
async def test_a_reason_holding_an_identifier_is_refused_before_anything_is_written(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: tuple[str, str],
    owner_db: Any,
    reason: str,
) -> None:
    rid = await opened(client, issuer, person[0])
    staff = issuer.mint("staff", "privacy-1")
    steps = "SELECT count(*) FROM audit_log WHERE purpose->>'request' = $1"
    before = await owner_db.fetchval(steps, rid)
    for query, extra in ((EXTEND, {}), (REFUSE, {"basis": "MANIFESTLY_UNFOUNDED_OR_EXCESSIVE"})):
        answer = await gql(client, staff, query, id=rid, reason=reason, **extra)
        (refused,) = answer.values()
        assert refused["__typename"] == "RequestRefused", refused
        assert "kept forever in the audit log" in refused["message"]
    assert await owner_db.fetchval(steps, rid) == before
    row = await owner_db.fetchrow(
        "SELECT status, extended_to FROM requests WHERE id = $1", UUID(rid)
    )
    assert row["extended_to"] is None and row["status"] != "refused"


async def test_a_refusal_is_emailed_with_its_basis_and_how_to_complain(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str], inbox: Any, owner_db: Any
) -> None:
    handle, address = person
    rid = await opened(client, issuer, handle)
    staff = issuer.mint("staff", "privacy-2")
    reason = "You asked for the same copy twelve times this week."
    done = (
        await gql(
            client,
            staff,
            REFUSE,
            id=rid,
            reason=reason,
            basis="MANIFESTLY_UNFOUNDED_OR_EXCESSIVE",
        )
    )["refuseRequest"]
    assert done["status"] == "REFUSED" and done["closedAt"] is not None
    (message,) = await eventually(lambda: inbox[0].to(address))
    text = " ".join(body_of(message).split())
    assert reason in text
    assert BASIS_TEXT[RefusalBasis.MANIFESTLY_UNFOUNDED_OR_EXCESSIVE] in text
    assert policy_sentence("You have the right to lodge a complaint") in text
    assert "https://www.ontra.ai" in text
    row = await owner_db.fetchrow(
        "SELECT actor, purpose FROM audit_log WHERE action = 'request.refuse' "
        "AND purpose->>'request' = $1",
        rid,
    )
    assert orjson.loads(row["actor"]) == {"kind": "staff", "iss": TEST_ISSUER, "sub": "privacy-2"}
    assert orjson.loads(row["purpose"])["basis"] == "manifestly_unfounded_or_excessive"
    closed = await gql(client, staff, EXTEND, id=rid, reason="Another ten words of reason.")
    assert closed["extendRequest"]["message"] == "The request is closed already."


async def test_a_support_export_emails_the_person_a_link_never_the_data(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str], inbox: Any
) -> None:
    handle, address = person
    access = {"ticket": f"CASE-{uuid4().int % 10**9}", "reason": "The customer phoned us."}
    await gql(
        client,
        issuer.mint("support", "agent-9"),
        EXPORT_FOR,
        subject=str(subject_id(handle)),
        access=access,
    )
    (message,) = await eventually(lambda: inbox[0].to(address))
    assert message["Subject"] == "A copy of your personal data is ready"
    text = body_of(message)
    assert "https://dsar.ontra.test/account" in text
    assert "does not contain your data" in text
    # Nothing of the person's records is in it: not their name, not their address.
    profile = build_subject(handle, full=True, sensitive=False).rows["profile"][0]
    for value in (profile["first_name"], profile["last_name"], profile["street"], address):
        assert str(value) not in text


async def test_staff_verify_with_a_note_but_never_a_document_number(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str]
) -> None:
    rid = await opened(client, issuer, person[0])
    staff = issuer.mint("staff", "privacy-3")
    refused = await gql(client, staff, VERIFY, id=rid, note="Passport 123456789 seen")
    assert (
        refused["verifyRequest"]["message"] == "Leave document and account numbers out of the note."
    )
    done = await gql(client, staff, VERIFY, id=rid, note="Passport seen on a video call")
    verified = done["verifyRequest"]
    assert verified["verification"] == {"method": "staff:id_document", "degree": "REASONABLY_HIGH"}
    assert verified["timeline"][-1] == {"step": "VERIFIED", "by": "staff"}


async def test_the_queue_puts_the_overdue_first_and_counts_them(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: tuple[str, str],
    owner_db: Any,
    settings: Settings,
    tmp_path: Path,
) -> None:
    rid = await opened(client, issuer, person[0])
    await owner_db.execute(
        """UPDATE requests SET received_at = received_at - interval '400 days',
                               acknowledge_by = acknowledge_by - interval '400 days',
                               due_at = due_at - interval '400 days' WHERE id = $1""",
        UUID(rid),
    )
    staff = issuer.mint("staff", "privacy-4")
    page = (await gql(client, staff, QUEUE, overdue=True, first=100))["requests"]
    ids = [e["node"]["id"] for e in page["edges"]]
    assert rid in ids
    # Earliest due first: this one, a year overdue, comes before every request still in time.
    everything = (await gql(client, staff, QUEUE, first=1))["requests"]
    assert everything["pageInfo"]["hasNextPage"] is True
    second = await gql(client, staff, QUEUE, first=1, after=everything["pageInfo"]["endCursor"])
    assert second["requests"]["edges"][0]["node"]["id"] != everything["edges"][0]["node"]["id"]
    open_ = [
        e["node"]["id"]
        for e in (await gql(client, staff, QUEUE, overdue=False, first=100))["requests"]["edges"]
    ]
    assert rid not in open_
    one = (await gql(client, staff, ONE, id=rid))["request"]
    assert one["id"] == rid and one["channel"] == "ACCOUNT"
    assert (await gql(client, staff, ONE, id=str(uuid4())))["request"] is None

    metrics = (await client.get("/metrics")).text
    gauge = re.search(r"^dsar_requests_overdue (\S+)$", metrics, re.M)
    assert gauge is not None and float(gauge.group(1)) >= 1

    env = cli_env(settings, tmp_path)
    listed = await asyncio.to_thread(run_cli, "requests", "list", "--overdue", env=env)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith(rid))
    assert line.split()[1:4] == ["account", "access", "in_progress"] and "OVERDUE" in line


async def test_only_privacy_staff_work_the_queue(
    client: httpx.AsyncClient, issuer: DevIssuer, person: tuple[str, str]
) -> None:
    rid = await opened(client, issuer, person[0])
    for token in (issuer.mint("customer", person[0]), issuer.mint("support", "agent-1")):
        r = await client.post(
            "/graphql",
            json={"query": EXTEND, "variables": {"id": rid, "reason": "Ten or more characters."}},
            headers=auth(token),
        )
        assert r.status_code == 403
        assert 'scope="privacy:manage"' in r.headers["www-authenticate"]


async def test_the_metrics_report_counts_the_years_requests(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: tuple[str, str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    year = datetime.now(UTC).year
    env = cli_env(settings, tmp_path)

    async def figures() -> dict[str, Any]:
        done = await asyncio.to_thread(
            run_cli, "report", "metrics", "--year", str(year), "--json", env=env
        )
        assert done.returncode == 0, done.stderr
        return dict(orjson.loads(done.stdout))

    before = await figures()
    rid = await opened(client, issuer, person[0])
    await gql(
        client,
        issuer.mint("staff", "privacy-5"),
        REFUSE,
        id=rid,
        reason="We could not confirm it was you.",
        basis="IDENTITY_NOT_VERIFIED",
    )
    after = await figures()
    know, was = after["requests_to_know"], before["requests_to_know"]
    assert know["received"] == was["received"] + 1
    assert know["denied"] == was["denied"] + 1
    assert know["median_days_to_respond"] is not None
    assert after["requests_to_delete"] == "not received through dsar"
    table = await asyncio.to_thread(run_cli, "report", "metrics", "--year", str(year), env=env)
    assert f"requests to know received            {know['received']}" in table.stdout
    assert "denied" in table.stdout


async def test_without_smtp_the_log_says_a_message_went_without_address_or_body(
    app: Starlette,
    issuer: DevIssuer,
    person: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle, address = person
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as plain:
        rid = await opened(plain, issuer, handle)
        with caplog.at_level(logging.INFO, logger="dsar.notices"):
            reason = "We must ask another team for part of it."
            await gql(plain, issuer.mint("staff", "privacy-6"), EXTEND, id=rid, reason=reason)
    (record,) = [r for r in caplog.records if r.name == "dsar.notices"]
    logged = record.getMessage() + str(record.__dict__)
    assert f"extension {rid}" in logged
    assert address not in logged and reason not in logged
    sent = app.state.services.mailer.sent
    assert sent[-1].to == address and reason in sent[-1].body
