"""Requests from people without an account, and from their authorized agents (issue 17, items 3
and 4): `/requests/new` and `submitRequest`.

The answer is the same whether or not the address is known: the request is recorded, an e-mail
goes to the address either way (a single-use link, kept only as its SHA-256, good for
`LINK_TTL`), and nothing is joined to a person until the link is followed. Following it
confirms the address: when the company's records hold that address for exactly one person, that
is a reasonable degree of verification (CCPA regulations §7061) and the person is shown the
categories-level statement; a copy of the data itself needs a reasonably high degree (§7062: a
strong login, or privacy staff recording what they checked). An agent's request waits for the
person to confirm, from their own address, that they gave the agent permission (§7063).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from catalogue import Category
from domain import audit, deadlines, jurisdiction, requests, support
from domain.audit import Action
from domain.errors import Gone, Refused
from domain.jurisdiction import UnknownJurisdiction, check_declared
from domain.requests import CLOSED, Channel, Degree, NewRequest, RequestRow, Status
from domain.services import Services
from domain.support import InvalidInput
from stores.scope import Conn, Scope, scoped

log = logging.getLogger("dsar.intake")

LINK_TTL = timedelta(hours=24)
# E-mails the form sends to one mailbox within a day (stores/migrations/service/
# 0017_intake_mail.sql): a person's confirmation links, and an authorized agent's receipts,
# counted apart so that naming someone as an agent never uses up their own requests.
MAILS_PER_ADDRESS = 3
RECEIPTS_PER_AGENT = 20
LIMIT_REACHED = (
    f"This address has had {MAILS_PER_ADDRESS} e-mails from this form today: use the link in "
    "one of them, or ask again tomorrow."
)
NAME_MAX = 200
KINDS = ("access", "portability")


class InvalidSubmission(Refused):
    """A request that cannot be taken as written (never: "this address is unknown")."""


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A followed link: the request as it now stands, and what the person may be shown."""

    request: RequestRow
    statement: tuple[Category, ...]  # the categories held about them; () when none matched
    matched: bool


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _address(email: str, what: str) -> str:
    try:
        return support.normalise_email(email)
    except InvalidInput:
        raise InvalidSubmission(f"{what} is not an e-mail address.") from None


def checked_agent(name: str, email: str) -> Agent:
    text = " ".join((name or "").split())
    if not 1 <= len(text) <= NAME_MAX or not text.isprintable():
        raise InvalidSubmission(f"The agent's name must be 1 to {NAME_MAX} characters.")
    return Agent(text, _address(email, "The agent's address"))


async def submit(
    services: Services,
    *,
    email: str,
    kind: str,
    jurisdiction: str | None,
    agent: Agent | None,
    time_zone: str | None = None,
    request_id: str = "-",
) -> None:
    """Records the request and sends its e-mails. Returns nothing: whatever the address, the
    caller says the same. Raises `InvalidSubmission` or `AuditUnavailable`."""
    address = _address(email, "The address")
    if kind not in KINDS:
        raise InvalidSubmission("Ask for access or portability.")
    try:
        declared = check_declared(services.catalogue, jurisdiction)
    except UnknownJurisdiction as exc:
        raise InvalidSubmission(exc.message) from None
    # Exactly one person with that address; several (a shared address) is none of them.
    found = await services.stores.subjects_by_email(address, 2)
    candidate = found[0] if len(found) == 1 else None
    secret = secrets.token_urlsafe(32)
    channel = Channel.AGENT if agent else Channel.PUBLIC_FORM
    new = NewRequest(channel, None, None, request_id, time_zone or "UTC", jurisdiction=declared)
    async with scoped(services.db, scope=Scope.INTAKE) as conn:
        await conn.execute("DELETE FROM intake_mail WHERE sent_at < now() - interval '1 day'")
        # Said whoever the address is (or is not): the limit is per mailbox, not per person.
        if not await _may_mail(conn, _keyed(services, "person", address), MAILS_PER_ADDRESS):
            log.warning(
                "intake: a mailbox had its e-mails for the day; nothing taken",
                extra={"request_id": request_id, "event": "intake.mail_limit"},
            )
            raise InvalidSubmission(LIMIT_REACHED)
        receipt = agent is not None and await _may_mail(
            conn, _keyed(services, "agent", agent.email), RECEIPTS_PER_AGENT
        )
        req = await requests.open_request(
            conn, services.rules.requests, new, subject_id=None, kind=kind, status=Status.VERIFYING
        )
        if agent is not None:
            await conn.execute(
                "UPDATE requests SET agent = $2::text::jsonb WHERE id = $1",
                req.id,
                requests.dumps({"name": agent.name, "email": agent.email}),
            )
        await conn.execute(
            """INSERT INTO request_links (hash, request_id, purpose, subject_id, expires_at)
               VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))""",
            _hash(secret),
            req.id,
            "agent_confirm" if agent else "verify",
            candidate,
            LINK_TTL.total_seconds(),
        )
    link = f"{services.public_url}/requests/verify?token={secret}"
    composer = services.composer
    if agent is None:
        await services.mailer.send(composer.verify(req, address, link, LINK_TTL))
    else:
        await services.mailer.send(composer.agent_confirm(req, address, agent.name, link, LINK_TTL))
        if receipt:  # past its day's receipts an agent's request still goes to the person
            await services.mailer.send(composer.agent_receipt(req, agent.email))


def mailbox(address: str) -> str:
    """The mailbox an address reaches, as far as the address itself tells: a `+tag` and a
    quoted local part reach the same one, Gmail ignores dots, a domain is one in Unicode and in
    punycode. Only for counting e-mails: messages go to the address as it was written."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.strip('"').split("+", 1)[0]
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _keyed(services: Services, role: str, address: str) -> bytes:
    text = f"{role}:{mailbox(address)}"
    return hmac.new(services.rules.secret_key, text.encode(), hashlib.sha256).digest()


async def _may_mail(conn: Conn, key: bytes, limit: int) -> bool:
    """Whether the mailbox of `key` has had fewer than `limit` e-mails of its kind from the
    form in the last day (`submit` deletes older rows first); if so this one is counted, in
    the caller's transaction (so a request that is not recorded is not counted either).
    Submissions for one mailbox take turns."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key.hex())
    n = await conn.fetchval("SELECT count(*) FROM intake_mail WHERE address_hash = $1", key)
    if n >= limit:
        return False
    await conn.execute("INSERT INTO intake_mail (address_hash) VALUES ($1)", key)
    return True


async def pending(services: Services, secret: str) -> RequestRow:
    """The request a link is for, while the link still works (`Gone` otherwise, whatever the
    reason: unknown, used or expired look alike)."""
    async with scoped(services.db, scope=Scope.INTAKE) as conn:
        row = await conn.fetchrow(
            """SELECT r.* FROM request_links l JOIN requests r ON r.id = l.request_id
               WHERE l.hash = $1 AND l.used_at IS NULL AND l.expires_at > now()""",
            _hash(secret),
        )
    if row is None or row["status"] in CLOSED:
        raise Gone
    return RequestRow.of(row)


async def confirm(services: Services, secret: str, request_id: str = "-") -> Confirmed:
    """Follows a link once: the address is confirmed (and, for an agent, the person's
    permission). Raises `Gone` or `AuditUnavailable` (then the link still works)."""
    async with scoped(services.db, scope=Scope.INTAKE) as conn:
        link = await conn.fetchrow(
            """UPDATE request_links SET used_at = now()
               WHERE hash = $1 AND used_at IS NULL AND expires_at > now()
               RETURNING request_id, purpose, subject_id""",
            _hash(secret),
        )
        if link is None:
            raise Gone
        req = await conn.fetchrow(
            "SELECT * FROM requests WHERE id = $1 FOR UPDATE", link["request_id"]
        )
        if req is None or req["status"] in CLOSED:
            raise Gone
        sid: UUID | None = link["subject_id"]
        try:  # what the form declared (UNKNOWN: nothing); None for a law no longer listed
            declared = check_declared(services.catalogue, req["jurisdiction"])
        except UnknownJurisdiction:
            declared = None
        if sid is not None:
            # What the person declared on the form meets what the records say: a disagreement
            # is UNKNOWN, whose deadline is the earlier one (domain.jurisdiction).
            key, due_at = req["jurisdiction"], req["due_at"]
            if declared is not None:
                said, _ = await jurisdiction.from_stores(services.stores, services.catalogue, sid)
                key = jurisdiction.combine(said, declared).key
                if key != declared:
                    due_at = deadlines.dates(
                        services.rules.requests, key, req["received_at"], req["time_zone"]
                    ).due_at
            # A confirmed address the records hold for this person: a reasonable degree. A copy
            # waits for a reasonably high one; the categories-level statement does not.
            row = await conn.fetchrow(
                """UPDATE requests SET subject_id = $2, verification_method = 'email_confirmed',
                                       verification_degree = $3, verified_at = now(),
                                       jurisdiction = $4, due_at = $5
                   WHERE id = $1 RETURNING *""",
                req["id"],
                sid,
                Degree.REASONABLE.value,
                key,
                due_at,
            )
        else:
            # No one in the records has that address: answered, nothing is held under it.
            row = await conn.fetchrow(
                """UPDATE requests SET verification_method = 'email_confirmed',
                                       status = 'completed', closed_at = now()
                   WHERE id = $1 RETURNING *""",
                req["id"],
            )
        assert row is not None
        done = RequestRow.of(row)
        purpose = {"request": str(done.id), "verification": "email_confirmed"}
        if link["purpose"] == "agent_confirm":
            purpose["reason"] = "The person confirmed the agent's permission."
        await audit.record(
            conn,
            request_id=request_id,
            actor=None,
            subject_id=sid,
            action=Action.REQUEST_VERIFY,
            outcome="allowed",
            purpose=purpose,
        )
        if done.status == Status.COMPLETED:
            await audit.record(
                conn,
                request_id=request_id,
                actor=None,
                subject_id=None,
                action=Action.REQUEST_COMPLETE,
                outcome="allowed",
                purpose={"request": str(done.id)},
            )
    held: tuple[Category, ...] = ()
    # The declaration is the request's alone: it was written by whoever filled in the form (a
    # stranger, an agent), so it never becomes the person's own for later settlements, where
    # it could decide what their copies release (domain.jurisdiction).
    if sid is not None:
        counts = (await services.stores.counts([sid])).get(sid, {})
        held = tuple(c for c in services.catalogue.categories if counts.get(c.key))
    return Confirmed(done, held, sid is not None)
