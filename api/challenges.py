"""`WWW-Authenticate` challenges (RFC 6750 section 3, RFC 9470 section 3) and the 401/403 answers.

Every refusal of a credential is mapped here and only here. The body names the error code and
nothing else: no token, no claim, no reason code, no description. A domain refusal answered
outside GraphQL (a download) takes its status and body from `schema.outcomes.hint` (`refusal`).
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from api.authn import (
    InsufficientScope,
    InvalidToken,
    NoCredentials,
    StepUpRequired,
)
from domain.errors import DomainError
from schema.outcomes import hint

REALM = "dsar"

AuthError = NoCredentials | InvalidToken | InsufficientScope | StepUpRequired

# RFC 6750 section 3: attribute values are quoted strings; scope and error values use only
# %x20-21 / %x23-5B / %x5D-7E, so a quote or a backslash never belongs in one.
_ALLOWED = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def _quoted(value: str) -> str:
    if not value or not set(value) <= _ALLOWED:
        raise ValueError("challenge attribute value outside RFC 6750's character set")
    return f'"{value}"'


def challenge(error: str | None = None, **attributes: str | int) -> str:
    """`Bearer realm="dsar"[, error="…"][, name="value"…]`."""
    parts = [f"realm={_quoted(REALM)}"]
    if error is not None:
        parts.append(f"error={_quoted(error)}")
    parts.extend(f"{name}={_quoted(str(value))}" for name, value in attributes.items())
    return "Bearer " + ", ".join(parts)


def no_credentials() -> str:
    # RFC 6750 section 3.1: "If the request lacks any authentication information ..., the
    # resource server SHOULD NOT include an error code or other error information."
    return challenge()


def invalid_token() -> str:
    return challenge("invalid_token")


def insufficient_scope(scope: str | None) -> str:
    if scope is None:  # no scope would do: the challenge names none
        return challenge("insufficient_scope")
    return challenge("insufficient_scope", scope=scope)


def insufficient_user_authentication(acr_values: tuple[str, ...], max_age: int) -> str:
    # RFC 9470 section 3: acr_values is "a space-separated string listing the authentication
    # context class reference values in order of preference"; max_age is in seconds.
    return challenge(
        "insufficient_user_authentication", acr_values=" ".join(acr_values), max_age=max_age
    )


def _response(status: int, error: str, header: str) -> JSONResponse:
    return JSONResponse(
        {"error": error},
        status_code=status,
        headers={"WWW-Authenticate": header, "Cache-Control": "no-store"},
    )


def error_response(exc: AuthError) -> JSONResponse:
    """The one place where an authentication failure becomes an HTTP answer."""
    if isinstance(exc, NoCredentials):
        return _response(401, "unauthenticated", no_credentials())
    if isinstance(exc, InvalidToken):
        return _response(401, "invalid_token", invalid_token())
    if isinstance(exc, InsufficientScope):
        # RFC 6750 section 3.1: insufficient_scope "SHOULD respond with the HTTP 403 status code".
        return _response(403, "insufficient_scope", insufficient_scope(exc.scope))
    return _response(
        401,
        "insufficient_user_authentication",
        insufficient_user_authentication(exc.acr_values, exc.max_age),
    )


def refusal(exc: DomainError) -> JSONResponse:
    """A domain refusal outside GraphQL: the step-up challenge (RFC 9470), or the status, body
    and headers `schema.outcomes` gives every other domain error."""
    if isinstance(exc, StepUpRequired | InsufficientScope):
        return error_response(exc)
    h = hint(exc)
    return JSONResponse(
        h.body, status_code=h.status, headers={"Cache-Control": "no-store", **h.headers}
    )
