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


def credentials(authorization_header: str | None) -> tuple[str, str]:
    """The scheme (`bearer` or `dpop`) and token of `Authorization: Bearer b64token` (RFC 6750
    section 2.1) or `Authorization: DPoP b64token` (RFC 9449 section 7.1). Schemes are
    case-insensitive."""
    if authorization_header is None or not authorization_header.strip():
        raise NoCredentials
    scheme, _, rest = authorization_header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop"):
        # "attempted using an unsupported authentication method": no error code (section 3.1).
        raise NoCredentials
    parts = rest.split()
    if len(parts) != 1:
        raise InvalidToken("malformed", dpop=scheme == "dpop")  # empty, or two tokens
    return scheme, parts[0]


def uses_dpop(authorization_header: str | None) -> bool:
    """The request sent its token with the DPoP scheme (its challenges are then DPoP's)."""
    scheme = (authorization_header or "").strip().partition(" ")[0]
    return scheme.lower() == "dpop"


def bearer_token(authorization_header: str | None) -> str:
    """The token of a Bearer `Authorization` header (a DPoP one is not a bearer token)."""
    scheme, token = credentials(authorization_header)
    if scheme != "bearer":
        raise InvalidToken("dpop_scheme", dpop=True)
    return token


# (access token, the key thumbprint it is bound to) -> None when the request's DPoP proof holds;
# raises `api.dpop.InvalidDPoPProof` otherwise.
ProofCheck = Callable[[str, str], Awaitable[None]]


async def check_binding(scheme: str, token: str, claims: Claims, proof: ProofCheck | None) -> None:
    """A sender-constrained token (RFC 7800 `cnf`) only with the proof of its key.

    `cnf.jkt` (RFC 9449 section 6.1) needs the DPoP scheme and a DPoP proof signed by that key;
    any other confirmation method (`x5t#S256`, mutual TLS, RFC 8705) cannot be checked here, so
    the token is refused rather than taken as a bearer token. A token with no `cnf` is a bearer
    token, and the DPoP scheme is not for it."""
    dpop = scheme == "dpop"
    cnf = claims.get("cnf")
    if cnf is None:
        if dpop:
            raise InvalidToken("not_dpop_bound", dpop=True)
        return
    if not isinstance(cnf, dict) or set(cnf) != {"jkt"} or not isinstance(cnf["jkt"], str):
        raise InvalidToken("unsupported_binding", dpop=dpop)
    if not dpop or proof is None:
        # RFC 9449 section 7.2: a DPoP-bound token sent as a bearer token is refused.
        raise InvalidToken("dpop_bound", dpop=True)
    await proof(token, cnf["jkt"])


async def authenticate(
    authorization_header: str | None,
    validator: Validator,
    resolve_subject: ResolveSubject,
    proof: ProofCheck | None = None,
) -> Principal:
    """The principal of a token; a bound one (`cnf`) only with `proof`, the check of the
    request's DPoP proof (None: no request to check, so a bound token is refused)."""
    scheme, token = credentials(authorization_header)
    try:
        claims = await validator.validate(token)
    except InvalidToken as error:
        raise InvalidToken(error.code, dpop=scheme == "dpop") from None
    await check_binding(scheme, token, claims, proof)
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
