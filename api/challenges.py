"""`WWW-Authenticate` challenges (RFC 6750 section 3, RFC 9470 section 3) and the 401/403 answers.

Every refusal of a credential is mapped here and only here. The body is GraphQL-shaped
(`{"errors": [{"message", "extensions": {"code", "error", ...}}]}`), the challenge as RFC 6750
and RFC 9470 say. A refused token gets an RFC 6750 `error_description` (in the challenge and in
the body) chosen from fixed text by the validator's reason code: never a part of the token. A
domain refusal answered outside GraphQL (a download) takes its status and body from
`schema.outcomes.hint` (`refusal`).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from api.authn import (
    InsufficientScope,
    InvalidToken,
    NoCredentials,
    StepUpRequired,
)
from api.dpop import DPOP_ALGORITHMS, InvalidDPoPProof
from domain.errors import DomainError
from schema.outcomes import hint

REALM = "dsar"

AuthError = NoCredentials | InvalidToken | InvalidDPoPProof | InsufficientScope | StepUpRequired

# RFC 6750 section 3: attribute values are quoted strings; scope and error values use only
# %x20-21 / %x23-5B / %x5D-7E, so a quote or a backslash never belongs in one.
_ALLOWED = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def _quoted(value: str) -> str:
    if not value or not set(value) <= _ALLOWED:
        raise ValueError("challenge attribute value outside RFC 6750's character set")
    return f'"{value}"'


def challenge(error: str | None = None, *, dpop: bool = False, **attributes: str | int) -> str:
    """`Bearer realm="dsar"[, error="…"][, name="value"…]`; with `dpop` the DPoP scheme's, which
    also names the proof algorithms accepted (RFC 9449 section 7.1: `algs`)."""
    parts = [f"realm={_quoted(REALM)}"]
    if error is not None:
        parts.append(f"error={_quoted(error)}")
    parts.extend(f"{name}={_quoted(str(value))}" for name, value in attributes.items())
    if dpop:
        parts.append(f"algs={_quoted(' '.join(DPOP_ALGORITHMS))}")
        return "DPoP " + ", ".join(parts)
    return "Bearer " + ", ".join(parts)


def no_credentials() -> str:
    # RFC 6750 section 3.1: "If the request lacks any authentication information ..., the
    # resource server SHOULD NOT include an error code or other error information."
    return challenge()


# The validator's reason codes (api/tokens.py, api/security.py), in words a client can act on.
TOKEN_PROBLEMS: dict[str, str] = {
    "malformed": "The access token is not a well-formed signed JWT.",
    "forbidden_header": "The access token's header carries a parameter this API refuses.",
    "algorithm": "The access token is signed with an algorithm this API does not accept.",
    "kid": "The access token's header names no key (kid).",
    "issuer": "The access token's issuer is not trusted by this API.",
    "no_issuer": "This API trusts no issuer yet.",
    "issuer_role": "The access token's issuer does not sign in this kind of caller here.",
    "dpop_bound": "The access token is bound to a key (DPoP): send it as Authorization: DPoP "
    "with a DPoP proof.",
    "not_dpop_bound": "The access token is not bound to a key: send it as Authorization: Bearer.",
    "dpop_scheme": "The access token was sent with the DPoP scheme.",
    "unsupported_binding": "The access token is bound to a key this API cannot check "
    "(only DPoP's cnf.jkt is supported).",
    "invalid_claim:cnf": "The access token's claim cnf is not valid.",
    "unknown_key": "The access token is signed with a key its issuer does not publish.",
    "signature": "The access token's signature does not verify.",
    "type": "The token is not an access token (typ must be at+jwt).",
    "expired_token": "The access token has expired.",
    "invalid_claim:aud": "The access token is meant for another audience.",
    "invalid_claim:iss": "The access token's issuer is not trusted by this API.",
    "invalid_claim:nbf": "The access token is not valid yet.",
    "invalid_claim:iat": "The access token was issued in the future.",
}
REFUSED_TEXT = "The access token was refused."

# The DPoP proof's reason codes (api/dpop.py), in words a client can act on.
PROOF_PROBLEMS: dict[str, str] = {
    "missing": "Send a DPoP proof in a DPoP header with a DPoP-bound access token.",
    "several": "Send exactly one DPoP header.",
    "malformed": "The DPoP proof is not a well-formed signed JWT.",
    "type": "The DPoP proof's typ must be dpop+jwt.",
    "algorithm": "The DPoP proof is signed with an algorithm this API does not accept.",
    "jwk": "The DPoP proof's header must carry the public key (jwk) that signed it.",
    "signature": "The DPoP proof's signature does not verify with its jwk.",
    "htm": "The DPoP proof's htm is not this request's method.",
    "htu": "The DPoP proof's htu is not this request's URI.",
    "iat": "The DPoP proof's iat is too far from the current time.",
    "ath": "The DPoP proof's ath is not the hash of this access token.",
    "key": "The DPoP proof is signed by a key other than the one the access token is bound to.",
    "replay": "This DPoP proof was used before: make a new one for each request.",
}
PROOF_REFUSED = "The DPoP proof was refused."


def proof_problem(code: str) -> str:
    kind, _, claim = code.partition(":")
    if code in PROOF_PROBLEMS:
        return PROOF_PROBLEMS[code]
    if kind == "claim" and claim in ("jti", "htm", "htu", "iat", "ath"):
        return f"The DPoP proof lacks a valid {claim} claim."
    return PROOF_REFUSED


_CLAIM_NAME = frozenset("abcdefghijklmnopqrstuvwxyz_")


def token_problem(code: str) -> str:
    """The `error_description` of a refused token, from its reason code alone."""
    kind, _, claim = code.partition(":")
    if code in TOKEN_PROBLEMS:
        return TOKEN_PROBLEMS[code]
    if kind in TOKEN_PROBLEMS:
        return TOKEN_PROBLEMS[kind]
    if claim and set(claim) <= _CLAIM_NAME and len(claim) <= 20:
        if kind == "missing_claim":
            return f"The access token lacks the required claim {claim}."
        if kind == "invalid_claim":
            return f"The access token's claim {claim} is not valid."
    return REFUSED_TEXT


def invalid_token(description: str | None = None, *, dpop: bool = False) -> str:
    if description is None:
        return challenge("invalid_token", dpop=dpop)
    return challenge("invalid_token", dpop=dpop, error_description=description)


def insufficient_scope(scope: str | None, *, dpop: bool = False) -> str:
    if scope is None:  # no scope would do: the challenge names none
        return challenge("insufficient_scope", dpop=dpop)
    return challenge("insufficient_scope", dpop=dpop, scope=scope)


def insufficient_user_authentication(
    acr_values: tuple[str, ...], max_age: int, *, dpop: bool = False
) -> str:
    # RFC 9470 section 3: acr_values is "a space-separated string listing the authentication
    # context class reference values in order of preference"; max_age is in seconds.
    return challenge(
        "insufficient_user_authentication",
        dpop=dpop,
        acr_values=" ".join(acr_values),
        max_age=max_age,
    )


def _response(
    status: int, header: str, message: str, media_type: str, **extensions: Any
) -> Response:
    body = {"errors": [{"message": message, "extensions": extensions}]}
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=media_type,
        headers={"WWW-Authenticate": header, "Cache-Control": "no-store"},
    )


def error_response(
    exc: AuthError, media_type: str = "application/json", *, dpop: bool = False
) -> Response:
    """The one place where an authentication failure becomes an HTTP answer. `media_type` is
    the GraphQL endpoint's negotiated one; the body is GraphQL-shaped either way. `dpop`: the
    request came with a DPoP-bound token, so a scope or step-up challenge is DPoP's (RFC 9449
    section 7.1)."""
    if isinstance(exc, NoCredentials):
        return _response(
            401,
            no_credentials(),
            "Send an access token: Authorization: Bearer <token>.",
            media_type,
            code="UNAUTHENTICATED",
        )
    if isinstance(exc, InvalidDPoPProof):
        # RFC 9449 section 7.1: a missing or bad proof is the DPoP scheme's invalid_dpop_proof.
        description = proof_problem(exc.code)
        return _response(
            401,
            challenge("invalid_dpop_proof", dpop=True, error_description=description),
            description,
            media_type,
            code="INVALID_DPOP_PROOF",
            error="invalid_dpop_proof",
            error_description=description,
        )
    if isinstance(exc, InvalidToken):
        description = token_problem(exc.code)
        return _response(
            401,
            invalid_token(description, dpop=exc.dpop),
            description,
            media_type,
            code="INVALID_TOKEN",
            error="invalid_token",
            error_description=description,
        )
    if isinstance(exc, InsufficientScope):
        # RFC 6750 section 3.1: insufficient_scope "SHOULD respond with the HTTP 403 status code".
        scoped = {} if exc.scope is None else {"scope": exc.scope}
        return _response(
            403,
            insufficient_scope(exc.scope, dpop=dpop),
            "The access token lacks the scope this operation needs.",
            media_type,
            code="INSUFFICIENT_SCOPE",
            error="insufficient_scope",
            **scoped,
        )
    return _response(
        401,
        insufficient_user_authentication(exc.acr_values, exc.max_age, dpop=dpop),
        "Log in again, recently and strongly enough, then retry with the new token.",
        media_type,
        code="INSUFFICIENT_USER_AUTHENTICATION",
        error="insufficient_user_authentication",
        acr_values=" ".join(exc.acr_values),
        max_age=exc.max_age,
    )


def refusal(exc: DomainError, *, dpop: bool = False) -> Response:
    """A domain refusal outside GraphQL: the step-up challenge (RFC 9470), or the status, body
    and headers `schema.outcomes` gives every other domain error."""
    if isinstance(exc, StepUpRequired | InsufficientScope):
        return error_response(exc, dpop=dpop)
    h = hint(exc)
    return JSONResponse(
        h.body, status_code=h.status, headers={"Cache-Control": "no-store", **h.headers}
    )
