"""What can go wrong in the rules, as data; the edges decide what each one looks like."""

from __future__ import annotations

import asyncmy.errors
import asyncpg

# Failures of a backing store are the service being unavailable, not the request being bad:
# 503 with Retry-After, never 500. Besides the network's own errors, every error a driver raises
# about its connection rather than about the statement: asyncpg's InterfaceError and
# InternalClientError (a protocol out of step, as after a backend was killed mid-query), and
# asyncmy's InterfaceError and OperationalError (a lost, killed or refused connection, and
# MySQL's other transient server states: lock wait timeout, deadlock, shutdown).
STORE_FAILURES = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    # SQLSTATE class 57: query canceled, admin or crash shutdown, cannot connect now.
    asyncpg.OperatorInterventionError,
    asyncmy.errors.InterfaceError,
    asyncmy.errors.OperationalError,
    # A reply out of step with the protocol (a packet sequence number wrong): the connection,
    # not the statement, is broken (stores/mysql.py closes it).
    asyncmy.errors.InternalError,
    ConnectionError,
    TimeoutError,
    OSError,
)


class DomainError(Exception):
    """A rule said no. Each kind holds data only; its message, when it has one, is fixed text
    safe to show. `schema/outcomes.py` and the HTTP edge decide what each looks like."""


class Refused(DomainError):
    """The request cannot be met as asked; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """Nothing of the caller's by that id: one answer for missing and for someone else's."""


class LimitReached(DomainError):
    """Past a limit of the rules (`Rules`); may ask again in `retry_after` seconds."""

    def __init__(self, retry_after: int, limit: str = "") -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after
        self.limit = limit  # which limit (a name of `Rules`), for the log and the metrics


class StepUpRequired(DomainError):
    """RFC 9470: the login is too weak or too old for this operation."""

    def __init__(self, acr_values: tuple[str, ...], max_age: int) -> None:
        super().__init__(acr_values, max_age)
        self.acr_values = acr_values
        self.max_age = max_age


class Overloaded(DomainError):
    """Too much of this runs at once here to start another now; ask again in `retry_after`
    seconds. Said before anything was sent."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Busy(DomainError):
    """The same thing is under way elsewhere right now."""


class Gone(DomainError):
    """It was there and can no longer be used (a spent or expired link): one answer for both."""


class Forbidden(DomainError):
    """The caller is of the wrong kind for this (a partner token that carries an agent's scope)."""


class InsufficientScope(Forbidden):
    """The principal's scopes do not allow this: `scope` would do; None when no scope does
    (a field open to no one)."""

    def __init__(self, scope: str | None) -> None:
        super().__init__(scope)
        self.scope = scope


class AuditUnavailable(DomainError):
    """The audit row could not be written, so nothing was done and nothing may be returned.

    The message is the error's type only: nothing of the row, the subject or the database.
    """
