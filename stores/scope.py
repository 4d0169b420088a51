"""Whose rows a transaction of the service may touch: the settings row-level security reads.

Every per-person table of the service database is protected by `dsar_protect_subject_rows()`
(stores/migrations/service/0009_row_security.sql): for the service's role a row exists only when
its subject is the transaction's subject, or the transaction names one of the few reasons that
reach across people (`Scope`). The settings are transaction-local (`set_config(…, true)`), so a
pooled connection never carries them into someone else's request, and a query that forgets its
`WHERE subject_id = …` returns nothing instead of everyone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy


class Scope(StrEnum):
    """The named paths that legitimately read across people (docs/SECURITY.md)."""

    LOGIN = "login"  # the subject linked to a login, by issuer and sub
    SUBJECTS = "subjects"  # subject ids of anchor values and handles (search, CLI, seed)
    BY_ID = "by_id"  # one export or grant by its id: may the caller have it? whose is it?
    PARTNER = "partner"  # a partner's live grants and the transfers made under them
    SUPPORT = "support"  # an agent's own looks in the audit log (hourly limit, ticket)
    SWEEP = "sweep"  # jobs over everyone: orphaned exports, expired sessions
    AUDIT = "audit"  # the whole audit log: verify and checkpoints
    STAFF = "staff"  # privacy staff's queue of requests: each one's timeline and exports
    INTAKE = "intake"  # a request made without an account, before it is anyone's (its link)


_SET = (
    "SELECT set_config('dsar.subject', $1, true), set_config('dsar.scope', $2, true), "
    "set_config('dsar.session', $3, true)"
)


async def bind(
    conn: Conn,
    *,
    subject: UUID | None = None,
    scope: Scope | None = None,
    session: bytes | None = None,
) -> None:
    """Sets the rows the caller's open transaction may touch (and clears what it does not name)."""
    if not conn.is_in_transaction():
        raise RuntimeError("scope.bind runs inside a transaction: the settings end with it")
    await conn.execute(
        _SET,
        "" if subject is None else str(subject),
        "" if scope is None else Scope(scope).value,
        "" if session is None else session.hex(),
    )


@asynccontextmanager
async def scoped(
    db: asyncpg.Pool | Conn,
    *,
    subject: UUID | None = None,
    scope: Scope | None = None,
    session: bytes | None = None,
    timeout: float | None = None,  # noqa: ASYNC109  # the pool's acquire timeout, as asyncpg names it
) -> AsyncIterator[Conn]:
    """A transaction bound to `subject` and/or a named `scope` (or an account `session`): a
    pooled connection of its own, or `db`'s new transaction. Inside an open transaction, call
    `bind` instead: its binding lasts until that transaction ends."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire(timeout=timeout) as conn, conn.transaction():
            await bind(conn, subject=subject, scope=scope, session=session)
            yield conn
        return
    async with db.transaction():
        await bind(db, subject=subject, scope=scope, session=session)
        yield db
