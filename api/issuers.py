"""Which trusted issuer may sign in which kind of caller.

An issuer is trusted for a purpose, not for everything: a `support:read` token from the customer
login (where anyone may sign up) must not make an agent, nor a client registered there under a
partner's client id make that partner. Customers come from the customer issuers
(`DSAR_OIDC_ISSUER`), agents and privacy staff only from the workforce issuer
(`DSAR_SUPPORT_ISSUER`), and each partner only from the issuer it was registered with
(`dsar partner add --issuer`). A deployment with one issuer for everyone (the demo) needs none of
this said: its one issuer is both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from api.tokens import InvalidToken
from domain.principals import Customer, Partner, Principal

# client_id -> the issuer the partner was registered with, or None when no partner has that id.
PartnerIssuer = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class IssuerRoles:
    customers: frozenset[str]
    # Agents and privacy staff; empty when no issuer may sign them in (several issuers and no
    # DSAR_SUPPORT_ISSUER: an operator must say which one is the workforce's).
    workforce: frozenset[str]

    @classmethod
    def of(
        cls, customers: Collection[str], support_issuer: str | None, dev_issuer: str | None
    ) -> IssuerRoles:
        if support_issuer is not None:
            workforce = {support_issuer}
        elif dev_issuer is not None:
            workforce = {dev_issuer}  # the demo: `dsar token --support` signs agents
        elif len(set(customers)) == 1:
            workforce = set(customers)
        else:
            workforce = set()
        return cls(frozenset(customers), frozenset(workforce))

    async def check(
        self, principal: Principal, partner_issuer: PartnerIssuer | None = None
    ) -> None:
        """Raises `InvalidToken("issuer_role")` when the token's issuer may not sign in this
        kind of caller. Without `partner_issuer` no partner passes."""
        if isinstance(principal, Customer):
            allowed = principal.issuer in self.customers
        elif isinstance(principal, Partner):
            # A client id no partner has is a partner of nothing (its grants are none); one that
            # a partner has is that partner only from the partner's own issuer.
            registered = (
                None if partner_issuer is None else await partner_issuer(principal.client_id)
            )
            allowed = partner_issuer is not None and registered in (None, principal.issuer)
        else:  # agents, staff, and any kind added later: the workforce only
            allowed = principal.issuer in self.workforce
        if not allowed:
            raise InvalidToken("issuer_role")
