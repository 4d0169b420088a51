"""Requests without an account: the same answer for a known and an unknown address, an e-mail to
each through a real SMTP server, a single-use link kept only as its hash, verification by
degree, and authorized agents waiting for the person's own confirmation."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile
from typing import Any
from uuid import uuid4

import httpx
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain import deadlines, intake
from stores.registry import Stores
from stores.seed import build_subject, insert_subject
from tests._gql import data as gql
from tests._mail import PUBLIC_URL, Inbox, body_of, eventually
from tests._tokens import TEST_ISSUER
from tests.test_requests import MINE, RULES

SUBMIT = """mutation($input: SubmitRequestInput!) { submitRequest(input: $input) {
  __typename ... on SubmittedRequest { message } ... on InvalidSubmission { message } } }"""
LINK = re.compile(re.escape(PUBLIC_URL) + r"/requests/verify\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def client(mail_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return mail_client


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue) -> tuple[str, str]:
    handle = f"pub-{uuid4().hex[:10]}"
    data = build_subject(handle, full=True, sensitive=False)
    data.rows["profile"][0].update(city="Oakland", region="CA", country="US")  # CCPA
    data.logins.append((TEST_ISSUER, handle))
    await insert_subject(stores, catalogue, data)
    return handle, str(data.rows["profile"][0]["email"])


async def submit(client: httpx.AsyncClient, **input: Any) -> httpx.Response:
    # No Authorization header at all: a person without an account.
    return await client.post("/graphql", json={"query": SUBMIT, "variables": {"input": input}})


def token_in(message: Any) -> str:
    found = LINK.search(body_of(message))
    assert found is not None, body_of(message)
    return found.group(1)


async def request_of(owner_db: Any, token: str) -> Any:
    digest = hashlib.sha256(token.encode()).digest()
    return await owner_db.fetchrow(
        "SELECT r.* FROM request_links l JOIN requests r ON r.id = l.request_id WHERE l.hash = $1",
        digest,
    )


async def test_known_and_unknown_addresses_get_the_same_answer_and_an_email_each(
    client: httpx.AsyncClient, person: tuple[str, str], inbox: tuple[Inbox, int], owner_db: Any
) -> None:
    _, known = person
    unknown = f"nobody-{uuid4().hex[:8]}@example.net"
    answers = [await submit(client, email=a, kind="ACCESS") for a in (known, unknown)]
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["data"]["submitRequest"]["__typename"] == "SubmittedRequest"
    mails = [(await eventually(lambda a=a: inbox[0].to(a)))[0] for a in (known, unknown)]
    bodies = [LINK.sub("LINK", re.sub(r"reference \S+\)", "", body_of(m))) for m in mails]
    assert bodies[0] == bodies[1]  # nothing in the message says which address is known
    assert mails[0]["Subject"] == mails[1]["Subject"] == "Please confirm your request"

    tokens = [token_in(m) for m in mails]
    rows = [await request_of(owner_db, t) for t in tokens]
    for row in rows:
        assert row["channel"] == "public_form" and row["status"] == "verifying"
        assert row["subject_id"] is None  # nothing is joined to a person before the link
    # The secret is nowhere at rest: only its SHA-256.
    for t in tokens:
        stored = await owner_db.fetch("SELECT hash FROM request_links WHERE hash = $1", t.encode())
        assert stored == []


async def test_following_the_link_verifies_to_a_reasonable_degree_once(
    client: httpx.AsyncClient,
    person: tuple[str, str],
    inbox: tuple[Inbox, int],
    owner_db: Any,
    issuer: DevIssuer,
    catalogue: Catalogue,
) -> None:
    handle, address = person
    await submit(client, email=address, kind="ACCESS", jurisdiction="CCPA")
    token = token_in((await eventually(lambda: inbox[0].to(address)))[0])
    # Opening the link shows a button: a mail scanner that fetches it does not spend it.
    for _ in range(2):
        shown = await client.get(f"/requests/verify?token={token}")
        assert shown.status_code == 200 and "Confirm my request" in shown.text
    done = await client.post("/requests/verify", data={"token": token})
    assert done.status_code == 200
    assert "the address is yours" in done.text
    assert catalogue.category("profile").title in done.text
    row = await request_of(owner_db, token)
    assert row["subject_id"] is not None
    assert (row["verification_method"], row["verification_degree"]) == (
        "email_confirmed",
        "reasonable",
    )
    # A copy needs a reasonably high degree: still waiting for it.
    assert row["status"] == "verifying"
    # The due date follows the declared jurisdiction, which the records agree with (CCPA:
    # 45 days).
    assert row["jurisdiction"] == "CCPA"
    assert row["due_at"] == deadlines.dates(RULES, "CCPA", row["received_at"], "UTC").due_at
    # The person sees it among their requests, with its steps.
    mine = (await gql(client, issuer.mint("customer", handle), MINE))["me"]["requests"]
    (req,) = [r for r in mine if r["id"] == str(row["id"])]
    assert req["channel"] == "PUBLIC_FORM"
    # Its receipt was recorded before it was anyone's: the person's own view starts at the
    # confirmation (privacy staff see every step).
    assert [s["step"] for s in req["timeline"]] == ["VERIFIED"]

    again = await client.post("/requests/verify", data={"token": token})
    assert again.status_code == 410
    assert (await client.get(f"/requests/verify?token={token}")).status_code == 410


@pytest.mark.parametrize(
    ("residence", "declared", "settled"),
    [
        # The records say Berlin, the form says California: UNKNOWN, the earlier deadline.
        ({"city": "Berlin", "region": "BE", "country": "DE"}, "CCPA", "UNKNOWN"),
        # The records say nothing of where the person lives: the declaration decides.
        ({"city": None, "region": None, "country": None}, "GDPR", "GDPR"),
    ],
)
async def test_a_declared_jurisdiction_meets_the_records_when_the_address_is_confirmed(
    client: httpx.AsyncClient,
    stores: Stores,
    catalogue: Catalogue,
    inbox: tuple[Inbox, int],
    owner_db: Any,
    residence: dict[str, Any],
    declared: str,
    settled: str,
) -> None:
    handle = f"pub-{uuid4().hex[:10]}"
    data = build_subject(handle, full=True, sensitive=False)
    data.rows["profile"][0].update(residence)
    await insert_subject(stores, catalogue, data)
    address = str(data.rows["profile"][0]["email"])
    await submit(client, email=address, kind="ACCESS", jurisdiction=declared)
    token = token_in((await eventually(lambda: inbox[0].to(address)))[0])
    before = await request_of(owner_db, token)
    assert before["jurisdiction"] == declared  # nobody is known yet: the form alone
    assert (await client.post("/requests/verify", data={"token": token})).status_code == 200
    row = await request_of(owner_db, token)
    assert row["jurisdiction"] == settled
    assert row["due_at"] == deadlines.dates(RULES, settled, row["received_at"], "UTC").due_at
    assert row["due_at"] <= before["due_at"]  # never later than what the form alone gave
    # Whoever filled in the form declared it: it is the request's, never the person's own
    # for later settlements (where it could decide what their copies release).
    kept = await owner_db.fetchval(
        "SELECT declared_jurisdiction FROM subjects WHERE id = $1", data.id
    )
    assert kept is None


async def test_an_unknown_address_confirmed_is_answered_with_nothing_held(
    client: httpx.AsyncClient, inbox: tuple[Inbox, int], owner_db: Any
) -> None:
    unknown = f"nobody-{uuid4().hex[:8]}@example.net"
    await submit(client, email=unknown, kind="PORTABILITY")
    token = token_in((await eventually(lambda: inbox[0].to(unknown)))[0])
    done = await client.post("/requests/verify", data={"token": token})
    assert "We hold no personal data that we can link to this e-mail address" in done.text
    row = await request_of(owner_db, token)
    assert row["status"] == "completed" and row["subject_id"] is None
    steps = await owner_db.fetch(
        "SELECT action FROM audit_log WHERE purpose->>'request' = $1 ORDER BY seq", str(row["id"])
    )
    assert [s["action"] for s in steps] == ["request.receive", "request.verify", "request.complete"]


async def test_an_expired_or_made_up_link_is_gone_alike(
    client: httpx.AsyncClient, person: tuple[str, str], inbox: tuple[Inbox, int], owner_db: Any
) -> None:
    _, address = person
    await submit(client, email=address)
    token = token_in((await eventually(lambda: inbox[0].to(address)))[0])
    await owner_db.execute(
        """UPDATE request_links SET created_at = now() - interval '2 days',
                                    expires_at = now() - interval '1 day' WHERE hash = $1""",
        hashlib.sha256(token.encode()).digest(),
    )
    expired = await client.post("/requests/verify", data={"token": token})
    made_up = await client.post("/requests/verify", data={"token": "x" * 43})
    assert expired.status_code == made_up.status_code == 410
    assert expired.text == made_up.text


async def test_one_mailbox_gets_at_most_its_days_links_and_is_told_so(
    client: httpx.AsyncClient, inbox: tuple[Inbox, int], owner_db: Any
) -> None:
    """Anyone may type anyone's address: one mailbox gets at most MAILS_PER_ADDRESS links a
    day, however it is spelled (+tags, Gmail's dots, case); past that the form says so, the
    same for any address, records nothing and sends nothing. Only a keyed hash is kept."""
    base = f"v{uuid4().hex[:8]}"
    spellings = [f"{base}@gmail.com", f"{base}+1@gmail.com", f"{base[0]}.{base[1:]}@GMail.com"]
    before = await owner_db.fetchval("SELECT count(*) FROM requests")
    answers = [await submit(client, email=spellings[n % 3], kind="ACCESS") for n in range(5)]
    kinds = [a.json()["data"]["submitRequest"]["__typename"] for a in answers]
    assert kinds == ["SubmittedRequest"] * 3 + ["InvalidSubmission"] * 2
    told = answers[3].json()["data"]["submitRequest"]["message"]
    assert told == intake.LIMIT_REACHED and answers[4].text == answers[3].text
    unknown = f"nobody-{uuid4().hex[:8]}@example.net"
    for _ in range(intake.MAILS_PER_ADDRESS):
        await submit(client, email=unknown, kind="ACCESS")
    assert (await submit(client, email=unknown, kind="ACCESS")).text == answers[3].text
    recorded = await owner_db.fetchval("SELECT count(*) FROM requests") - before
    assert recorded == 2 * intake.MAILS_PER_ADDRESS
    await asyncio.sleep(0.5)  # what would have been sent has had time to arrive
    assert sum(len(inbox[0].to(s.lower())) for s in spellings) == intake.MAILS_PER_ADDRESS
    stored = await owner_db.fetch("SELECT address_hash FROM intake_mail")
    assert all(base.encode() not in r["address_hash"] for r in stored)
    # The form page says it on the address field, as any other refusal.
    page = await client.post(
        "/requests/new", data={"email": spellings[0], "kind": "access", "jurisdiction": ""}
    )
    assert page.status_code == 400 and "use the link in one of them" in page.text
    # A day later the mailbox may be written to again.
    await owner_db.execute("UPDATE intake_mail SET sent_at = sent_at - interval '25 hours'")
    again = await submit(client, email=spellings[1], kind="ACCESS")
    assert again.json()["data"]["submitRequest"]["__typename"] == "SubmittedRequest"


async def test_naming_someone_as_agent_never_uses_up_their_own_requests(
    client: httpx.AsyncClient, inbox: tuple[Inbox, int], owner_db: Any
) -> None:
    """An agent's receipts are counted apart (RECEIPTS_PER_AGENT): an agent acting for more
    people than a person's daily links loses none of their requests, and a stranger who names
    someone as their agent neither floods them past that nor blocks their own request."""
    agent = {"name": "Acme Privacy Agents", "email": f"agent-{uuid4().hex[:6]}@agents.example"}
    people = [f"c{n}-{uuid4().hex[:6]}@example.net" for n in range(intake.MAILS_PER_ADDRESS + 1)]
    before = await owner_db.fetchval("SELECT count(*) FROM requests")
    for p in people:
        r = await submit(client, email=p, kind="ACCESS", agent=agent)
        assert r.json()["data"]["submitRequest"]["__typename"] == "SubmittedRequest"
    assert await owner_db.fetchval("SELECT count(*) FROM requests") - before == len(people)
    for p in people:
        assert await eventually(lambda p=p: inbox[0].to(p)), p
    assert await eventually(lambda: len(inbox[0].to(agent["email"])) == len(people))
    victim = f"victim-{uuid4().hex[:8]}@example.net"
    for _ in range(intake.MAILS_PER_ADDRESS):
        other = f"x-{uuid4().hex[:8]}@example.net"
        await submit(client, email=other, kind="ACCESS", agent={"name": "X", "email": victim})
    own = await submit(client, email=victim, kind="ACCESS")
    assert own.json()["data"]["submitRequest"]["__typename"] == "SubmittedRequest"
    assert await eventually(lambda: [m for m in inbox[0].to(victim) if LINK.search(body_of(m))]), (
        "the person's own link"
    )


async def test_an_agents_request_waits_for_the_persons_confirmation(
    client: httpx.AsyncClient,
    person: tuple[str, str],
    inbox: tuple[Inbox, int],
    owner_db: Any,
    issuer: DevIssuer,
) -> None:
    _, address = person
    agent = f"agent-{uuid4().hex[:6]}@agents.example"
    r = await submit(
        client, email=address, kind="ACCESS", agent={"name": "Acme Privacy Agents", "email": agent}
    )
    assert r.json()["data"]["submitRequest"]["__typename"] == "SubmittedRequest"
    (ask,) = await eventually(lambda: inbox[0].to(address))
    assert ask["Subject"] == "Did you authorize an agent?"
    assert "Acme Privacy Agents" in body_of(ask)
    (receipt,) = await eventually(lambda: inbox[0].to(agent))
    assert "We act on the request only once they do" in body_of(receipt)
    assert LINK.search(body_of(receipt)) is None  # the agent never gets the person's link
    token = token_in(ask)
    row = await request_of(owner_db, token)
    assert row["channel"] == "agent" and row["status"] == "verifying"
    assert row["subject_id"] is None and row["verification_degree"] is None
    # Staff cannot act on it before the person confirms.
    early = await gql(client, issuer.mint("staff", "privacy-8"), VERIFY, id=str(row["id"]))
    assert early["verifyRequest"] == {"__typename": "RequestRefused"}
    shown = await client.get(f"/requests/verify?token={token}")
    assert "Yes, I gave them permission" in shown.text
    await client.post("/requests/verify", data={"token": token})
    row = await request_of(owner_db, token)
    assert row["subject_id"] is not None and row["verification_degree"] == "reasonable"


async def test_a_bad_submission_is_refused_and_other_fields_still_need_a_token(
    client: httpx.AsyncClient,
) -> None:
    bad = await submit(client, email="not an address")
    assert bad.json()["data"]["submitRequest"] == {
        "__typename": "InvalidSubmission",
        "message": "The address is not an e-mail address.",
    }
    unknown_law = await submit(client, email="someone@example.net", jurisdiction="MARS")
    assert unknown_law.json()["data"]["submitRequest"]["__typename"] == "InvalidSubmission"
    mixed = await client.post(
        "/graphql",
        json={
            "query": 'mutation { submitRequest(input: {email: "a@b.c"}) { __typename } } '
            "query { me { id } }"
        },
    )
    assert mixed.status_code in (400, 401)
    me = await client.post("/graphql", json={"query": "{ me { id } }"})
    assert me.status_code == 401


async def test_the_form_page_takes_a_request_and_says_the_same_for_any_address(
    client: httpx.AsyncClient, person: tuple[str, str], inbox: tuple[Inbox, int]
) -> None:
    page = await client.get("/requests/new")
    assert page.status_code == 200 and 'name="email"' in page.text
    answers = [
        await client.post("/requests/new", data={"email": a, "kind": "access", "jurisdiction": ""})
        for a in (person[1], f"nobody-{uuid4().hex[:8]}@example.net")
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].text.replace(answers[0].headers.get("x-request-id", ""), "") == answers[
        1
    ].text.replace(answers[1].headers.get("x-request-id", ""), "")
    await eventually(lambda: inbox[0].to(person[1]))
    wrong = await client.post("/requests/new", data={"email": "nope", "kind": "access"})
    assert wrong.status_code == 400 and "There is a problem" in wrong.text


VERIFY = """mutation($id: ID!) { verifyRequest(id: $id, method: ID_DOCUMENT,
  note: "Passport seen on a video call") {
  __typename ... on Request { status exports notified heldForReview verification { degree } } } }"""
APPROVE = """mutation($id: ID!) { approveRequest(id: $id) {
  __typename ... on Request { status exports notified heldForReview } } }"""
EXPORT = "query($id: ID!) { export(id: $id) { downloadUrl categories } }"


async def download(client: httpx.AsyncClient, token: str, export_id: str) -> zipfile.ZipFile:
    export = (await gql(client, token, EXPORT, id=export_id))["export"]
    got = await client.get(export["downloadUrl"], headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    return zipfile.ZipFile(io.BytesIO(got.content))


async def test_staff_verification_opens_the_copy_and_review_holds_others_data_until_approved(
    client: httpx.AsyncClient,
    person: tuple[str, str],
    inbox: tuple[Inbox, int],
    owner_db: Any,
    issuer: DevIssuer,
) -> None:
    handle, address = person
    await submit(client, email=address, kind="ACCESS")
    token = token_in((await eventually(lambda: inbox[0].to(address)))[0])
    await client.post("/requests/verify", data={"token": token})
    rid = str((await request_of(owner_db, token))["id"])
    staff = issuer.mint("staff", "privacy-7")
    done = (await gql(client, staff, VERIFY, id=rid))["verifyRequest"]
    assert done["verification"]["degree"] == "REASONABLY_HIGH"
    # Recordings and correspondence may show other people: held back until staff approve.
    assert done["status"] == "IN_REVIEW"
    assert done["heldForReview"] == ["recordings", "provided"]
    assert done["notified"] is True and len(done["exports"]) == 1
    (ready,) = await eventually(
        lambda: [m for m in inbox[0].to(address) if "ready" in m["Subject"]]
    )
    text = " ".join(body_of(ready).split())
    assert f"{PUBLIC_URL}/account" in text
    assert "Not in it yet: Photos, Videos and Recordings" in text and "GDPR Art. 15(4)" in text
    # The person has the rest at once, with their own login; the request is not answered yet.
    customer = issuer.mint("customer", handle)
    first = await download(client, customer, done["exports"][0])
    names = first.namelist()
    assert "data/profile.json" in names and "data/provided.json" not in names
    assert not any(n.startswith("media/") for n in names)
    assert (await request_of(owner_db, token))["status"] == "in_review"

    approved = (await gql(client, staff, APPROVE, id=rid))["approveRequest"]
    assert approved["status"] == "IN_PROGRESS" and approved["heldForReview"] == []
    assert approved["notified"] is True and len(approved["exports"]) == 2
    second = await download(client, customer, approved["exports"][1])
    assert "data/provided.json" in second.namelist()
    assert (await request_of(owner_db, token))["status"] == "completed"
