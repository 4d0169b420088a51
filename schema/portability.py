"""Portability in GraphQL: the person's grants, and the partner's transfers (GDPR Art. 20).

Customer side: `portabilityPartners`, `grantPortability`, `revokePortability`,
`portabilityGrants`. Partner side: `portabilityTransfers`, `startTransfer`. Each resolver
parses its arguments, calls one function of `domain.portability` and maps the result through
`schema.outcomes`; every partner call and every refusal leaves an audit row there.
"""

from __future__ import annotations

from typing import Any

import strawberry

from domain import portability
from schema import outcomes
from schema._parse import uuid_or_none
from schema.context import Context
from schema.export_types import ExportFormat
from schema.portability_types import (
    GrantedTransfer,
    GrantInput,
    GrantResult,
    PartnerInfo,
    PortabilityGrant,
    RevokeResult,
    TransferResult,
)


async def portability_partners(info: strawberry.Info) -> list[PartnerInfo]:
    ctx: Context = info.context
    offered = await portability.offered(ctx.services.db, ctx.services.catalogue, ctx.principal)
    return [PartnerInfo.of(p) for p in offered]


async def grant_portability(info: strawberry.Info, input: GrantInput) -> GrantResult:
    ctx: Context = info.context
    services = ctx.services
    return await outcomes.grant(
        ctx,
        portability.grant(
            services.db,
            services.catalogue,
            services.rules,
            ctx.principal,
            partner=input.partner,
            categories=input.categories,
            expires_at=input.expires_at,
            request_id=ctx.request_id,
        ),
    )


async def revoke_portability(info: strawberry.Info, id: strawberry.ID) -> RevokeResult:
    ctx: Context = info.context
    return await outcomes.revoke(
        ctx, portability.revoke(ctx.services.db, ctx.principal, uuid_or_none(id), ctx.request_id)
    )


async def portability_grants(info: strawberry.Info) -> list[PortabilityGrant]:
    ctx: Context = info.context
    return [
        PortabilityGrant.of(g) for g in await portability.my_grants(ctx.services.db, ctx.principal)
    ]


async def portability_transfers(info: strawberry.Info) -> list[GrantedTransfer]:
    ctx: Context = info.context
    granted = await portability.granted_to(ctx.services.db, ctx.services.rules, ctx.principal)
    return [GrantedTransfer.of(g) for g in granted]


async def start_transfer(
    info: strawberry.Info,
    grant: strawberry.ID,
    format: ExportFormat = ExportFormat.JSON,
    full: bool = False,
) -> TransferResult:
    ctx: Context = info.context
    return await outcomes.transfer(
        ctx,
        portability.start_transfer(
            ctx.services.db,
            ctx.services.rules,
            ctx.principal,
            uuid_or_none(grant),
            format=format.value,
            full=full,
            request_id=ctx.request_id,
            audit_log=ctx.services.audit,
        ),
    )


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
