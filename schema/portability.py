"""Portability in GraphQL: the person's grants, and the partner's transfers (GDPR Art. 20).

Customer side: `portabilityPartners`, `grantPortability`, `revokePortability`,
`portabilityGrants`.
Partner side: `portabilityTransfers`, `startTransfer`. Resolvers are a few lines over
`domain.portability`; every partner call and every refusal leaves an audit row.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry

from domain import partners, portability
from domain.errors import LimitReached, StepUpRequired
from domain.partners import GrantRefused
from domain.portability import Grant, TransferRefused
from domain.principals import Customer, Partner
from schema import outcomes
from schema.context import Context
from schema.exports import Export, ExportFormat, StrongerLoginRequired


@strawberry.enum(description="Where a grant stands.")
class GrantStatus(enum.Enum):
    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"


@strawberry.type(description="A permission a person gave a partner to receive some of their data.")
class PortabilityGrant:
    id: strawberry.ID = strawberry.field(description="Grant id.")
    partner: str = strawberry.field(description="The partner's client id.")
    partner_name: str = strawberry.field(description="The partner's name.")
    categories: list[str] = strawberry.field(description="Category keys the partner may receive.")
    status: GrantStatus = strawberry.field(description="Live, expired or revoked.")
    created_at: datetime = strawberry.field(description="When it was given.")
    expires_at: datetime = strawberry.field(description="When it ends by itself.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")
    transfers: list[Export] = strawberry.field(
        description="What the partner received under this grant, newest first."
    )


@strawberry.type(description="A company a person may let receive some of their data.")
class PartnerInfo:
    client_id: str = strawberry.field(
        description="The partner's client id: the `partner` of grantPortability."
    )
    name: str = strawberry.field(description="The partner's name.")
    contact: str | None = strawberry.field(description="How to reach the partner, if known.")
    categories: list[str] = strawberry.field(
        description="Category keys it may receive, in policy order; never inferred data."
    )


@strawberry.type(description="A live grant to the calling partner: what it may pull.")
class GrantedTransfer:
    grant: strawberry.ID = strawberry.field(description="The grant id: pass it to startTransfer.")
    subject_ref: str = strawberry.field(
        description="A stable pseudonymous reference to the person, for this partner only."
    )
    categories: list[str] = strawberry.field(description="Category keys granted.")
    expires_at: datetime = strawberry.field(description="When the grant ends.")
    last_transfer_at: datetime | None = strawberry.field(
        description="When the last complete transfer was taken (the next delta starts there)."
    )


@strawberry.input(description="What to let a partner receive.")
class GrantInput:
    partner: str = strawberry.field(description="The partner's client id.")
    categories: list[str] = strawberry.field(description="Category keys, all portable.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the grant ends (default 90 days, at most 366)."
    )


@strawberry.type(description="The grant cannot be given as asked.")
class GrantRefusedError:
    message: str = strawberry.field(description="Why, in plain words.")


@strawberry.type(description="No such grant of yours.")
class GrantNotFound:
    message: str = strawberry.field(description="What happened.")


@strawberry.type(description="No live grant to this partner by that id.")
class TransferNotAllowed:
    message: str = strawberry.field(description="What happened.")


@strawberry.type(description="Too many transfers; try again later.")
class TransferLimitReached:
    message: str = strawberry.field(description="What happened.")
    retry_after: int = strawberry.field(description="Seconds to wait.")


GrantResult = Annotated[
    PortabilityGrant | StrongerLoginRequired | GrantRefusedError,
    strawberry.union("GrantResult", description="The grant, or why there is none."),
]
RevokeResult = Annotated[
    PortabilityGrant | GrantNotFound,
    strawberry.union("RevokeResult", description="The revoked grant, or why there is none."),
]
TransferResult = Annotated[
    Export | TransferNotAllowed | TransferLimitReached,
    strawberry.union("TransferResult", description="The transfer, or why there is none."),
]


async def _grant_types(ctx: Context, grants: list[Grant]) -> list[PortabilityGrant]:
    db = ctx.services.db
    names = await portability.partner_names(db, sorted({g.partner for g in grants}))
    transfers = await portability.transfers_of(db, [g.id for g in grants])
    now = datetime.now(UTC)
    return [
        PortabilityGrant(
            id=strawberry.ID(str(g.id)),
            partner=g.partner,
            partner_name=names.get(g.partner, g.partner),
            categories=list(g.categories),
            status=GrantStatus(g.status_at(now)),
            created_at=g.created_at,
            expires_at=g.expires_at,
            revoked_at=g.revoked_at,
            # The person sees what left; the download link is the partner's, not theirs.
            transfers=[_without_link(Export.of(t, "")) for t in transfers[g.id]],
        )
        for g in grants
    ]


def _without_link(export: Export) -> Export:
    export.download_url = None
    return export


async def portability_partners(info: strawberry.Info) -> list[PartnerInfo]:
    ctx: Context = info.context
    if not isinstance(ctx.principal, Customer):
        return []
    catalogue = ctx.services.catalogue
    enabled = [p for p in await partners.list_partners(ctx.services.db) if p.disabled_at is None]
    return [
        PartnerInfo(
            client_id=p.client_id,
            name=p.name,
            contact=p.contact,
            # Registration checks this already; a row written by hand is held to it here too.
            categories=[
                k for k in catalogue.keys if k in p.categories and catalogue.category(k).portable
            ],
        )
        for p in sorted(enabled, key=lambda p: (p.name.casefold(), p.client_id))
    ]


async def grant_portability(info: strawberry.Info, input: GrantInput) -> GrantResult:
    ctx: Context = info.context
    principal = ctx.principal
    if not isinstance(principal, Customer):
        return GrantRefusedError(message="Only a person can grant access to their own data.")
    services = ctx.services
    try:
        given = await portability.grant(
            services.db,
            services.catalogue,
            services.rules,
            principal,
            partner=input.partner,
            categories=input.categories,
            expires_at=input.expires_at,
            request_id=ctx.request_id,
        )
    except StepUpRequired as exc:
        return StrongerLoginRequired.of(
            exc, "Log in again, recently and strongly, to let a partner receive your data."
        )
    except GrantRefused as exc:
        return GrantRefusedError(message=str(exc))
    return (await _grant_types(ctx, [given]))[0]


async def revoke_portability(info: strawberry.Info, id: strawberry.ID) -> RevokeResult:
    ctx: Context = info.context
    principal = ctx.principal
    grant_id = _uuid(id)
    revoked = None
    if isinstance(principal, Customer) and grant_id is not None:
        revoked = await portability.revoke(ctx.services.db, principal, grant_id, ctx.request_id)
    if revoked is None:
        return GrantNotFound(message="No such grant of yours.")
    return (await _grant_types(ctx, [revoked]))[0]


async def portability_grants(info: strawberry.Info) -> list[PortabilityGrant]:
    ctx: Context = info.context
    principal = ctx.principal
    if not isinstance(principal, Customer) or principal.subject_id is None:
        return []
    return await _grant_types(
        ctx, await portability.grants_of(ctx.services.db, principal.subject_id)
    )


def subject_ref(secret: bytes, partner: str, subject_id: UUID) -> str:
    """Pairwise: the same person has a different reference at each partner, so partners
    cannot join what they hold on our internal id."""
    mac = hmac.new(secret, f"subject-ref|{partner}|{subject_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


async def portability_transfers(info: strawberry.Info) -> list[GrantedTransfer]:
    ctx: Context = info.context
    partner = ctx.principal
    if not isinstance(partner, Partner):
        return []
    db = ctx.services.db
    grants = await portability.live_grants(db, partner)
    transfers = await portability.transfers_of(db, [g.id for g in grants])
    secret = ctx.services.rules.secret_key
    return [
        GrantedTransfer(
            grant=strawberry.ID(str(g.id)),
            subject_ref=subject_ref(secret, partner.client_id, g.subject_id),
            categories=list(g.categories),
            expires_at=g.expires_at,
            last_transfer_at=max(
                (t.generated_at for t in transfers[g.id] if t.generated_at), default=None
            ),
        )
        for g in grants
    ]


async def start_transfer(
    info: strawberry.Info,
    grant: strawberry.ID,
    format: ExportFormat = ExportFormat.JSON,
    full: bool = False,
) -> TransferResult:
    ctx: Context = info.context
    partner = ctx.principal
    grant_id = _uuid(grant)
    db = ctx.services.db
    if not isinstance(partner, Partner) or grant_id is None:
        return TransferNotAllowed(message="No live grant to you by that id.")
    try:
        row = await portability.start_transfer(
            db,
            ctx.services.rules,
            partner,
            grant_id,
            format=format.value,
            full=full,
            request_id=ctx.request_id,
        )
    except TransferRefused:
        return TransferNotAllowed(message="No live grant to you by that id.")
    except LimitReached as exc:
        return TransferLimitReached(
            message="Too many transfers for now.", retry_after=outcomes.limited(ctx, exc)
        )
    return Export.of(row, ctx.base_url)


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


QUERY_FIELDS: dict[str, Any] = {
    "portability_partners": strawberry.field(
        resolver=portability_partners,
        description="The partners you may let receive your data (grantPortability), by name.",
    ),
    "portability_grants": strawberry.field(
        resolver=portability_grants,
        description="The caller's grants to partners, newest first, each with its transfers.",
    ),
    "portability_transfers": strawberry.field(
        resolver=portability_transfers,
        description="Partner: the live grants to the calling partner.",
    ),
}
MUTATION_FIELDS: dict[str, Any] = {
    "grant_portability": strawberry.mutation(
        resolver=grant_portability,
        description="Let a partner receive some of your data until a date. Needs a recent, "
        "strong login.",
    ),
    "revoke_portability": strawberry.mutation(
        resolver=revoke_portability,
        description="Revoke a grant: the partner gets nothing more from its next request on.",
    ),
    "start_transfer": strawberry.mutation(
        resolver=start_transfer,
        description="Partner: start a transfer of a live grant; download it from `downloadUrl` "
        "with the same token. A delta since the last complete transfer unless `full`.",
    ),
}
