"""From an `Authorization` header to exactly one principal, or a typed refusal.

The exceptions hold only data; `api.challenges` turns each into its 401/403 response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import UUID

from api.tokens import Claims, InvalidToken
from domain.errors import InsufficientScope, StepUpRequired
from domain.principals import (
    SCOPE_CUSTOMER,
    SCOPE_PARTNER,
    SCOPE_STAFF,
    SCOPE_SUPPORT,
    Authentication,
    Customer,
    Partner,
    Principal,
    PrivacyStaff,
    SupportAgent,
)
from domain.stepup import require_strong_login

__all__ = [
    "InsufficientScope",
    "InvalidToken",
    "NoCredentials",
    "ResolveSubject",
    "StepUpRequired",
    "authenticate",
    "require_scope",
    "require_strong_login",
]

# (issuer, sub) -> subject id, or None for a login that is linked to no data.
ResolveSubject = Callable[[str, str], Awaitable[UUID | None]]


class NoCredentials(Exception):
    """No bearer token was sent (RFC 6750 section 3.1: then no error code in the challenge).
    Edge-only, as `InvalidToken` is: no token or header reaches the domain (`api/errors.py`)."""


class Validator(Protocol):
    async def validate(self, token: str) -> Claims: ...


def bearer_token(authorization_header: str | None) -> str:
    """RFC 6750 section 2.1: `Authorization: Bearer b64token`. The scheme is case-insensitive."""
    if authorization_header is None or not authorization_header.strip():
        raise NoCredentials
    scheme, _, rest = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        # "attempted using an unsupported authentication method": no error code (section 3.1).
        raise NoCredentials
    parts = rest.split()
    if len(parts) != 1:
        raise InvalidToken("malformed")  # empty, or two tokens
    return parts[0]


async def authenticate(
    authorization_header: str | None,
    validator: Validator,
    resolve_subject: ResolveSubject,
) -> Principal:
    claims = await validator.validate(bearer_token(authorization_header))
    issuer: str = claims["iss"]
    sub: str = claims["sub"]
    client_id: str = claims["client_id"]
    token_id: str = claims["jti"]
    scopes = frozenset(str(claims.get("scope", "")).split())
    login = Authentication(acr=claims.get("acr"), auth_time=_int_or_none(claims.get("auth_time")))

    # Precedence is fixed: a partner can never become a person, whatever its `sub` looks like.
    if SCOPE_PARTNER in scopes:
        return Partner(issuer=issuer, client_id=client_id, scopes=scopes, token_id=token_id)
    if SCOPE_STAFF in scopes:
        return PrivacyStaff(
            issuer=issuer, sub=sub, scopes=scopes, authentication=login, token_id=token_id
        )
    if SCOPE_SUPPORT in scopes:
        return SupportAgent(
            issuer=issuer, sub=sub, scopes=scopes, authentication=login, token_id=token_id
        )
    if sub == client_id:
        # A client-credentials token (RFC 9068 section 2.2: sub is then the client id) names a
        # program, not a data subject: it gets only what its own scopes allow a partner.
        return Partner(issuer=issuer, client_id=client_id, scopes=scopes, token_id=token_id)
    if SCOPE_CUSTOMER in scopes:
        return Customer(
            issuer=issuer,
            sub=sub,
            subject_id=await resolve_subject(issuer, sub),
            scopes=scopes,
            authentication=login,
            token_id=token_id,
        )
    raise InsufficientScope(SCOPE_CUSTOMER)


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise InsufficientScope(scope)


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
