"""The GraphQL shapes of portability (GDPR Art. 20): grants, partners, transfers, and the union
members of their failures (`schema/outcomes.py` chooses them)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from domain.partners import PartnerRecord
from domain.portability import Granted, GrantView
from schema.export_types import Export, StrongerLoginRequired


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

    @classmethod
    def of(cls, view: GrantView) -> PortabilityGrant:
        g = view.grant
        return cls(
            id=strawberry.ID(str(g.id)),
            partner=g.partner,
            partner_name=view.partner_name,
            categories=list(g.categories),
            status=GrantStatus(g.current_status),
            created_at=g.created_at,
            expires_at=g.expires_at,
            revoked_at=g.revoked_at,
            # The person sees what left; the download link is the partner's, not theirs.
            transfers=[Export.of(t, base_url=None) for t in view.transfers],
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

    @classmethod
    def of(cls, p: PartnerRecord) -> PartnerInfo:
        return cls(
            client_id=p.client_id, name=p.name, contact=p.contact, categories=list(p.categories)
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

    @classmethod
    def of(cls, g: Granted) -> GrantedTransfer:
        return cls(
            grant=strawberry.ID(str(g.grant.id)),
            subject_ref=g.subject_ref,
            categories=list(g.grant.categories),
            expires_at=g.grant.expires_at,
            last_transfer_at=g.last_transfer_at,
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
