"""The partner section's one door to portability: the GraphQL schema executed in-process with
the session's principal, as the data page reads (api/account/data.py).

Why the schema and not domain.portability directly: its resolvers are where a grant and a
revocation get their audit rows and their typed refusals, so the page goes through exactly the
path an API client does and there is nothing here to keep in step with it. Also the page's words
for a grant's and a transfer's state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry

from api.account.data import DataUnavailable, size
from api.account.web import when
from catalogue import Category
from domain.errors import Refused, StepUpRequired
from domain.principals import Customer
from domain.services import Services
from schema.context import Context

_GRANT = """fragment AccountGrant on PortabilityGrant {
  id partner partnerName categories status createdAt expiresAt revokedAt
  transfers { status records bytes createdAt finishedAt } }"""
PARTNERS = "query AccountPartners { portabilityPartners { clientId name contact categories } }"
SECTION = (
    "query AccountPartnerSection { portabilityPartners { clientId name contact categories } "
    "portabilityGrants { ...AccountGrant } } " + _GRANT
)
GRANT = (
    "mutation AccountGrantPortability($input: GrantInput!) { grantPortability(input: $input) { "
    "__typename ...AccountGrant ... on GrantRefusedError { message } } } " + _GRANT
)
REVOKE = (
    "mutation AccountRevokePortability($id: ID!) { revokePortability(id: $id) { "
    "__typename ...AccountGrant } } " + _GRANT
)
GRANT_STATUS = {"live": "Active", "expired": "Ended", "revoked": "Revoked"}
NOT_RECEIVED = {
    "ready": "Not yet",
    "running": "Being sent now",
    "failed": "Did not finish",
    "expired": "Never: the link expired",
}


@dataclass(frozen=True, slots=True)
class PartnerView:
    client_id: str
    name: str
    contact: str | None
    categories: tuple[Category, ...]

    @property
    def anchor(self) -> str:
        """An HTML id for this partner's form, whatever characters its client id holds."""
        return "partner-" + hashlib.sha256(self.client_id.encode()).hexdigest()[:10]

    @property
    def email(self) -> bool:
        c = self.contact or ""
        return "@" in c and " " not in c and ":" not in c


@dataclass(frozen=True, slots=True)
class TransferView:
    status: str
    records: int | None
    bytes: int | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def asked(self) -> str:
        return when(self.created_at)

    @property
    def received(self) -> str:
        # `records` is that of the last complete download: something did leave, and when.
        if self.records is not None and self.finished_at is not None:
            return when(self.finished_at)
        return NOT_RECEIVED.get(self.status, self.status)

    @property
    def size(self) -> str:
        return "None" if self.bytes is None else size(self.bytes)


@dataclass(frozen=True, slots=True)
class GrantView:
    id: str
    partner: str
    partner_name: str
    categories: tuple[str, ...]  # titles, in policy order
    status: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    transfers: tuple[TransferView, ...]

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def status_text(self) -> str:
        return GRANT_STATUS.get(self.status, self.status)

    @property
    def given(self) -> str:
        return when(self.created_at)

    @property
    def until(self) -> str:
        return when(self.revoked_at or self.expires_at)


@dataclass(frozen=True, slots=True)
class Section:
    partners: list[PartnerView]
    grants: list[GrantView]


async def section(
    services: Services, schema: strawberry.Schema, principal: Customer, request_id: str
) -> Section:
    data = await _execute(services, schema, principal, request_id, SECTION, {})
    return Section(
        [_partner(services, p) for p in data["portabilityPartners"]],
        [_grant(services, g) for g in data["portabilityGrants"]],
    )


async def partners(
    services: Services, schema: strawberry.Schema, principal: Customer, request_id: str
) -> list[PartnerView]:
    data = await _execute(services, schema, principal, request_id, PARTNERS, {})
    return [_partner(services, p) for p in data["portabilityPartners"]]


async def grant(
    services: Services,
    schema: strawberry.Schema,
    principal: Customer,
    request_id: str,
    *,
    partner: str,
    categories: Sequence[str],
    expires_at: datetime,
) -> GrantView:
    """Raises `StepUpRequired`, `Refused` (fixed text, safe to show) or `DataUnavailable`."""
    variables = {
        "input": {
            "partner": partner,
            "categories": list(categories),
            "expiresAt": expires_at.isoformat(),
        }
    }
    data = await _execute(services, schema, principal, request_id, GRANT, variables)
    result = data["grantPortability"]
    if result["__typename"] == "StrongerLoginRequired":
        rules = services.rules
        raise StepUpRequired(rules.step_up_acr_values, rules.step_up_max_age)
    if result["__typename"] == "GrantRefusedError":
        raise Refused(result["message"])
    return _grant(services, result)


async def revoke(
    services: Services,
    schema: strawberry.Schema,
    principal: Customer,
    request_id: str,
    grant_id: str,
) -> GrantView | None:
    """The person's own grant, revoked; None when there is no such grant of theirs."""
    data = await _execute(services, schema, principal, request_id, REVOKE, {"id": grant_id})
    result = data["revokePortability"]
    return _grant(services, result) if result["__typename"] == "PortabilityGrant" else None


async def _execute(
    services: Services,
    schema: strawberry.Schema,
    principal: Customer,
    request_id: str,
    document: str,
    variables: dict[str, Any],
) -> Mapping[str, Any]:
    context = Context(services, principal, request_id)
    result = await schema.execute(document, variable_values=variables, context_value=context)
    if result.errors or result.data is None:
        raise DataUnavailable
    return result.data


def _partner(services: Services, p: Mapping[str, Any]) -> PartnerView:
    catalogue = services.catalogue
    cats = tuple(catalogue.category(k) for k in catalogue.keys if k in p["categories"])
    return PartnerView(p["clientId"], p["name"], p["contact"], cats)


def _grant(services: Services, g: Mapping[str, Any]) -> GrantView:
    catalogue = services.catalogue
    return GrantView(
        id=g["id"],
        partner=g["partner"],
        partner_name=g["partnerName"],
        categories=tuple(
            catalogue.category(k).title for k in catalogue.keys if k in g["categories"]
        ),
        status=g["status"].lower(),
        created_at=_at(g["createdAt"]),
        expires_at=_at(g["expiresAt"]),
        revoked_at=None if g["revokedAt"] is None else _at(g["revokedAt"]),
        transfers=tuple(
            TransferView(
                t["status"].lower(),
                t["records"],
                t["bytes"],
                _at(t["createdAt"]),
                None if t["finishedAt"] is None else _at(t["finishedAt"]),
            )
            for t in g["transfers"]
        ),
    )


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)
