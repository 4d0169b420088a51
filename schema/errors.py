"""Errors a client may see. Everything else is masked to a generic message with a request id."""

from __future__ import annotations

from typing import Any


class PublicError(Exception):
    """An error whose message is safe to show: fixed text, never a value from a store."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # graphql-core copies an original error's `extensions` into the GraphQL error.
        self.extensions: dict[str, Any] = {"code": self.code}


class InvalidCursor(PublicError):
    code = "INVALID_CURSOR"

    def __init__(self) -> None:
        super().__init__("The cursor is not valid for this list.")


class InvalidArgument(PublicError):
    code = "INVALID_ARGUMENT"


class Forbidden(PublicError):
    code = "FORBIDDEN"

    def __init__(self) -> None:
        super().__init__("Not allowed for this caller.")


class SupportError(PublicError):
    """A typed error of the support query fields (their result types are fixed by the
    contract); `extensions.code` names it."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extensions.update(extra)


class AccessRefused(SupportError):
    code = "INVALID_SUPPORT_ACCESS"


class BadArgument(SupportError):
    code = "INVALID_ARGUMENT"


class LookLimit(SupportError):
    code = "SUPPORT_LIMIT_REACHED"


class AuditDown(SupportError):
    code = "AUDIT_UNAVAILABLE"
