"""Errors a client may see. Everything else is masked to a generic message with a request id."""

from __future__ import annotations

from graphql import GraphQLError


class PublicError(Exception):
    """An error whose message is safe to show: fixed text, never a value from a store."""

    code = "BAD_REQUEST"

    def __init__(self, message: str) -> None:
        super().__init__(message)


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


def is_public(error: GraphQLError) -> bool:
    return isinstance(error.original_error, PublicError) or error.original_error is None
