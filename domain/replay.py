"""One-time values (a DPoP proof's `jti`): each accepted once across every API process, as the
service database is what they share. Rows expire; expired ones are cleared a few at a time by the
writes themselves, without waiting on each other."""

from __future__ import annotations

import hashlib

import asyncpg

# Expired rows one insert clears at most: enough to keep pace with the inserts, never a sweep.
_PURGE = 32


async def first_use(db: asyncpg.Pool, scope: str, value: str, lifetime: int) -> bool:
    """True the first time (`scope`, `value`) is seen within `lifetime` seconds; False after."""
    key = hashlib.sha256(f"{scope}\x00{value}".encode()).digest()
    inserted = await db.fetchval(
        """WITH gone AS (
               DELETE FROM dpop_proofs WHERE id IN (
                   SELECT id FROM dpop_proofs WHERE expires_at < now()
                   LIMIT $3 FOR UPDATE SKIP LOCKED))
           INSERT INTO dpop_proofs (id, expires_at)
           VALUES ($1, now() + make_interval(secs => $2))
           ON CONFLICT (id) DO NOTHING RETURNING true""",
        key,
        lifetime,
        _PURGE,
    )
    return inserted is True
