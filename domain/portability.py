"""Portability (GDPR Art. 20): grants and transfers; the partners themselves are `domain.partners`.

A person grants one partner some categories until a date; the partner then starts transfers of
exactly those categories and downloads them with its own token. Every partner request reads the
grant from the database, so a revocation holds from the very next request, whatever tokens are
still alive. A grant never covers inferred data: portability is about data the person provided
or that was observed from their use (WP242).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from catalogue import Catalogue
from domain import audit, exports
from domain.audit import Action, actor_of
from domain.errors import NotFound
from domain.exports import DAY, Conn, ExportRow, within_limit
from domain.partners import GrantRefused, PartnerRecord, dumps, list_partners, portable
from domain.principals import Customer, Partner, Principal
from domain.requests import Channel, Degree, NewRequest, Verification
from domain.rules import Rules
from domain.stepup import require_strong_login
from stores.scope import Scope, bind, scoped

DEFAULT_GRANT_DAYS = 90
MAX_GRANT_DAYS = 366
MINUTE = timedelta(minutes=1)


class TransferRefused(NotFound):
    """No live grant of this partner by that id: one answer for every reason."""


@dataclass(frozen=True, slots=True)
class Grant:
    id: UUID
    subject_id: UUID
    partner: str
    categories: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    # The database's clock when the row was read: it judges the expiry (`SELECT {ROW}`).
    checked_at: datetime

    @classmethod
    def of(cls, row: asyncpg.Record) -> Grant:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["categories"] = tuple(values["categories"])
        return cls(**values)

    @property
    def current_status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.checked_at >= self.expires_at else "live"


# Grants: given and revoked by the person.


async def grant(
    db: asyncpg.Pool,
    catalogue: Catalogue,
    rules: Rules,
    principal: Principal | None,
    *,
    partner: str,
    categories: Sequence[str],
    expires_at: datetime | None = None,
    request_id: str = "-",
) -> GrantView:
    """The grant, committed with its audit row. Raises `StepUpRequired`
    (step-up), `GrantRefused`, or `AuditUnavailable` (then no grant was given)."""
    if not isinstance(principal, Customer):
        raise GrantRefused("Only a person can grant access to their own data.")
    require_strong_login(principal, rules.step_up_acr_values, rules.step_up_max_age)
    if principal.subject_id is None:
        raise GrantRefused("No personal data is linked to this login: there is nothing to send.")
    keys = portable(catalogue, categories)
    # The database's clock judges the expiry, as everywhere.
    now = await db.fetchval("SELECT now()")
    expires_at = expires_at or now + timedelta(days=DEFAULT_GRANT_DAYS)
    if expires_at.tzinfo is None:
        raise GrantRefused("Give the expiry with a time zone.")
    if not now < expires_at <= now + timedelta(days=MAX_GRANT_DAYS):
        raise GrantRefused(
            f"The expiry must be in the future and at most {MAX_GRANT_DAYS} days away."
        )
    row = await db.fetchrow(
        "SELECT * FROM partners WHERE client_id = $1 AND disabled_at IS NULL", partner
    )
    if row is None:
        raise GrantRefused("Unknown partner.")
    allowed = PartnerRecord.of(row).categories
    if not set(keys) <= set(allowed):
        raise GrantRefused("This partner may not receive some of these categories.")
    async with scoped(db, subject=principal.subject_id) as conn:
        created = await conn.fetchrow(
            """INSERT INTO grants (id, subject_id, partner, categories, granted_by, verification,
                                   expires_at)
               VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7)
               RETURNING *, now() AS checked_at""",
            uuid4(),
            principal.subject_id,
            partner,
            keys,
            dumps(actor_of(principal)),
            dumps(exports.verification(principal, rules)),
            expires_at,
        )
        assert created is not None
        given = Grant.of(created)
        await _audited(conn, request_id, principal, given, Action.GRANT_CREATE)
    return (await described(db, [given]))[0]


async def _audited(
    conn: Conn, request_id: str, principal: Customer, g: Grant, action: Action
) -> None:
    await audit.record(
        conn,
        request_id=request_id,
        actor=principal,
        subject_id=g.subject_id,
        action=action,
        outcome="allowed",
        purpose={"grant_id": str(g.id)},
        categories=g.categories,
    )


async def revoke(
    db: asyncpg.Pool, principal: Principal | None, grant_id: UUID | None, request_id: str = "-"
) -> GrantView:
    """The person's own grant, revoked now (or already) with its audit row. Raises `NotFound`
    when it is not theirs (or not a grant id), or `AuditUnavailable` (then the grant stays as
    it was)."""
    if not isinstance(principal, Customer) or principal.subject_id is None or grant_id is None:
        raise NotFound
    async with scoped(db, subject=principal.subject_id) as conn:
        row = await conn.fetchrow(
            """UPDATE grants SET revoked_at = coalesce(revoked_at, now())
               WHERE id = $1 AND subject_id = $2 RETURNING *, now() AS checked_at""",
            grant_id,
            principal.subject_id,
        )
        if row is None:
            raise NotFound
        revoked = Grant.of(row)
        await _audited(conn, request_id, principal, revoked, Action.GRANT_REVOKE)
    return (await described(db, [revoked]))[0]


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant as its person sees it: the partner's name and what left under it."""

    grant: Grant
    partner_name: str
    transfers: list[ExportRow]


async def described(db: asyncpg.Pool, grants: Sequence[Grant]) -> list[GrantView]:
    """The person's own grants (all of one subject), with what left under each."""
    names = await partner_names(db, sorted({g.partner for g in grants}))
    transfers = await transfers_of(db, [g.id for g in grants], subject_id=_one_subject(grants))
    return [GrantView(g, names.get(g.partner, g.partner), transfers[g.id]) for g in grants]


async def my_grants(db: asyncpg.Pool, principal: Principal | None) -> list[GrantView]:
    """The person's grants, newest first (none for any other caller)."""
    if not isinstance(principal, Customer) or principal.subject_id is None:
        return []
    return await described(db, await grants_of(db, principal.subject_id))


async def offered(
    db: asyncpg.Pool, catalogue: Catalogue, principal: Principal | None
) -> list[PartnerRecord]:
    """The enabled partners a person may grant, by name, each with the categories it may
    receive in policy order: registration checks them already, a row written by hand is held
    to it here too."""
    if not isinstance(principal, Customer):
        return []
    enabled = [p for p in await list_partners(db) if p.disabled_at is None]
    return [
        replace(
            p,
            categories=tuple(
                k for k in catalogue.keys if k in p.categories and catalogue.category(k).portable
            ),
        )
        for p in sorted(enabled, key=lambda p: (p.name.casefold(), p.client_id))
    ]


def _one_subject(grants: Sequence[Grant]) -> UUID | None:
    subjects = {g.subject_id for g in grants}
    if len(subjects) > 1:
        raise ValueError("described: grants of one person at a time")
    return next(iter(subjects), None)


async def grants_of(db: asyncpg.Pool, subject_id: UUID) -> list[Grant]:
    async with scoped(db, subject=subject_id) as conn:
        rows = await conn.fetch(
            "SELECT *, now() AS checked_at FROM grants WHERE subject_id = $1 "
            "ORDER BY created_at DESC",
            subject_id,
        )
    return [Grant.of(r) for r in rows]


async def partner_names(db: asyncpg.Pool, client_ids: Sequence[str]) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT client_id, name FROM partners WHERE client_id = any($1::text[])", list(client_ids)
    )
    return {r["client_id"]: r["name"] for r in rows}


async def transfers_of(
    db: asyncpg.Pool, grant_ids: Sequence[UUID], *, subject_id: UUID | None = None
) -> dict[UUID, list[ExportRow]]:
    """The transfers under these grants: one person's (`subject_id`), or else the calling
    partner's own (`Scope.PARTNER`)."""
    scope = Scope.PARTNER if subject_id is None else None
    async with scoped(db, subject=subject_id, scope=scope) as conn:
        rows = await conn.fetch(
            f"SELECT {exports.ROW} FROM exports WHERE grant_id = any($1::uuid[]) "  # noqa: S608  # a constant, no input
            "ORDER BY created_at DESC",
            list(grant_ids),
        )
    out: dict[UUID, list[ExportRow]] = {g: [] for g in grant_ids}
    for r in rows:
        out[r["grant_id"]].append(ExportRow.of(r))
    return out


# The partner's side.

_LIVE = """
    SELECT g.*, now() AS checked_at FROM grants g JOIN partners p ON p.client_id = g.partner
    WHERE p.client_id = $1 AND p.issuer = $2 AND p.disabled_at IS NULL
      AND g.revoked_at IS NULL AND g.expires_at > now()
"""


async def live_grants(db: asyncpg.Pool, partner: Partner) -> list[Grant]:
    async with scoped(db, scope=Scope.PARTNER) as conn:
        rows = await conn.fetch(_LIVE + " ORDER BY g.created_at", partner.client_id, partner.issuer)
    return [Grant.of(r) for r in rows]


async def live_grant(db: asyncpg.Pool | Conn, partner: Partner, grant_id: UUID) -> Grant | None:
    """On a pool, in a transaction of its own; on a connection, in the caller's transaction,
    which it binds to `Scope.PARTNER`."""
    query = _LIVE + " AND g.id = $3"
    if isinstance(db, asyncpg.Pool):
        async with scoped(db, scope=Scope.PARTNER) as conn:
            row = await conn.fetchrow(query, partner.client_id, partner.issuer, grant_id)
    else:
        await bind(db, scope=Scope.PARTNER)
        row = await db.fetchrow(query, partner.client_id, partner.issuer, grant_id)
    return None if row is None else Grant.of(row)


@dataclass(frozen=True, slots=True)
class Granted:
    """A live grant as its partner sees it: never our subject id, a pairwise reference."""

    grant: Grant
    subject_ref: str
    last_transfer_at: datetime | None


def subject_ref(secret: bytes, partner: str, subject_id: UUID) -> str:
    """Pairwise: the same person has a different reference at each partner, so partners
    cannot join what they hold on our internal id."""
    mac = hmac.new(secret, f"subject-ref|{partner}|{subject_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


async def granted_to(db: asyncpg.Pool, rules: Rules, principal: Principal | None) -> list[Granted]:
    """The live grants to the calling partner (none for any other caller), with when the last
    complete transfer was taken (the next delta starts there)."""
    if not isinstance(principal, Partner):
        return []
    grants = await live_grants(db, principal)
    transfers = await transfers_of(db, [g.id for g in grants])
    return [
        Granted(
            g,
            subject_ref(rules.secret_key, principal.client_id, g.subject_id),
            max((t.generated_at for t in transfers[g.id] if t.generated_at), default=None),
        )
        for g in grants
    ]


async def grant_subject(db: asyncpg.Pool, grant_id: UUID) -> UUID | None:
    """Whose grant this is, for the audit row of a refused attempt."""
    async with scoped(db, scope=Scope.BY_ID) as conn:
        value = await conn.fetchval("SELECT subject_id FROM grants WHERE id = $1", grant_id)
    return value if isinstance(value, UUID) else None


async def start_transfer(
    db: asyncpg.Pool,
    rules: Rules,
    partner: Principal | None,
    grant_id: UUID | None,
    *,
    format: str = "json",
    full: bool = False,
    request_id: str = "-",
    audit_log: audit.GroupCommit,
) -> ExportRow:
    """A portability export of exactly the granted categories, for this partner to download,
    committed with its audit row (a refusal's row stands alone: through `audit_log`).

    A delta (the default) holds only records dated after the last completed transfer of the
    grant, in categories that have a date; `full` asks for everything. Raises
    `TransferRefused` (recorded as denied when it names a grant), `LimitReached` or
    `AuditUnavailable`.
    """
    if not isinstance(partner, Partner) or grant_id is None:
        raise TransferRefused
    async with scoped(db, scope=Scope.PARTNER) as conn:
        found = await live_grant(conn, partner, grant_id)
        if found is not None:
            # The request this transfer answers is the person's: their subject row too.
            await bind(conn, subject=found.subject_id, scope=Scope.PARTNER)
            row = await _transfer(
                conn, rules, partner, found, format=format, full=full, request_id=request_id
            )
            await audit.record(
                conn,
                request_id=request_id,
                actor=partner,
                subject_id=row.subject_id,
                action=Action.TRANSFER_START,
                outcome="allowed",
                purpose=_transfer_purpose(row, grant_id),
                categories=row.categories,
            )
            return row
    # Someone else's grant, an expired or revoked one: recorded against its subject.
    await audit.record(
        audit_log,
        request_id=request_id,
        actor=partner,
        subject_id=await grant_subject(db, grant_id),
        action=Action.TRANSFER_START,
        outcome="denied",
        purpose={"grant_id": str(grant_id)},
    )
    raise TransferRefused


def _transfer_purpose(row: ExportRow, grant_id: UUID) -> dict[str, str]:
    purpose = {"grant_id": str(grant_id), "transfer_id": str(row.id)}
    if row.request_id is not None:
        purpose["request"] = str(row.request_id)
    return purpose


async def _transfer(
    conn: Conn,
    rules: Rules,
    partner: Partner,
    found: Grant,
    *,
    format: str,
    full: bool,
    request_id: str,
) -> ExportRow:
    since = None
    if not full:
        since = await conn.fetchval(
            "SELECT max(generated_at) FROM exports WHERE grant_id = $1 AND status = 'completed'",
            found.id,
        )

    async def limits(conn: Conn) -> None:
        recipient = {"kind": "partner", "iss": partner.issuer, "client_id": partner.client_id}
        # The partner's limit counts transfers of every person: checked and inserted under the
        # partner's own lock (held to the commit), or concurrent starts on different grants,
        # each under its own subject's lock, would all see the same count.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 22))",
            f"partner|{partner.issuer}|{partner.client_id}",
        )
        minute = await conn.fetch(
            """SELECT created_at FROM exports
               WHERE recipient = $1::text::jsonb AND created_at > now() - interval '1 minute'
               ORDER BY created_at""",
            dumps(recipient),
        )
        most = rules.partner_transfers_per_minute
        await within_limit(
            conn, [r["created_at"] for r in minute], most, MINUTE, "partner_transfers_per_minute"
        )
        day = await conn.fetch(
            """SELECT created_at FROM exports
               WHERE grant_id = $1 AND created_at > now() - interval '1 day'
                 AND status <> 'failed'
               ORDER BY created_at""",
            found.id,
        )
        await within_limit(
            conn,
            [r["created_at"] for r in day],
            rules.grant_transfers_per_day,
            DAY,
            "grant_transfers_per_day",
        )

    return await exports.create(
        conn,
        rules,
        limit=limits,
        subject_id=found.subject_id,
        requested_by=actor_of(partner),
        recipient={"kind": "partner", "iss": partner.issuer, "client_id": partner.client_id},
        purpose="portability",
        format=format,
        categories=list(found.categories),
        verification={"method": "portability_grant", "grant_id": str(found.id)},
        # The grant itself was given with a strong, recent login (`grant`).
        request=NewRequest(
            Channel.PARTNER,
            partner,
            Verification("portability_grant", Degree.REASONABLY_HIGH),
            request_id,
        ),
        grant_id=found.id,
        since=since,
    )
