"""Partner controllers (GDPR Art. 20): who may receive transfers, managed by `dsar partner`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from catalogue import Catalogue
from domain.errors import Refused
from exporters.jwe import UnusableKey, rsa_public_key

Conn = asyncpg.Connection | PoolConnectionProxy


class GrantRefused(Refused):
    """A grant that cannot be given as asked."""


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    client_id: str
    issuer: str
    name: str
    contact: str | None
    categories: tuple[str, ...]
    public_jwk: dict[str, Any] | None
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> PartnerRecord:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["categories"] = tuple(values["categories"])
        return cls(**values)


async def add_partner(
    db: asyncpg.Pool | Conn,
    catalogue: Catalogue,
    *,
    client_id: str,
    issuer: str,
    name: str,
    categories: Sequence[str],
    contact: str | None = None,
    public_jwk: dict[str, Any] | None = None,
) -> PartnerRecord:
    """Raises `GrantRefused` for categories that are unknown or never portable, or a public
    key that bundles cannot be encrypted to."""
    portable(catalogue, categories)
    if public_jwk is not None:
        try:
            rsa_public_key(public_jwk)
        except UnusableKey as exc:
            raise GrantRefused(f"public key: {exc}") from None
    try:
        row = await db.fetchrow(
            """INSERT INTO partners (client_id, issuer, name, contact, categories, public_jwk)
               VALUES ($1, $2, $3, $4, $5, $6::text::jsonb) RETURNING *""",
            client_id,
            issuer,
            name,
            contact,
            list(dict.fromkeys(categories)),
            None if public_jwk is None else dumps(public_jwk),
        )
    except asyncpg.UniqueViolationError:
        raise GrantRefused(f"partner {client_id!r} exists already") from None
    assert row is not None
    return PartnerRecord.of(row)


async def registered_issuer(db: asyncpg.Pool | Conn, client_id: str) -> str | None:
    """The issuer a partner was registered with; None when no partner has this client id."""
    issuer: str | None = await db.fetchval(
        "SELECT issuer FROM partners WHERE client_id = $1", client_id
    )
    return issuer


async def partner_key(db: asyncpg.Pool | Conn, client_id: str) -> dict[str, Any] | None:
    """The partner's public key, when it registered one: its bundles are encrypted to it."""
    value = await db.fetchval(
        "SELECT public_jwk::text FROM partners WHERE client_id = $1", client_id
    )
    if value is None:
        return None
    key: dict[str, Any] = orjson.loads(value)
    return key


DEMO_PARTNER = "demo-partner"


async def ensure_demo_partner(db: asyncpg.Pool | Conn, catalogue: Catalogue, issuer: str) -> None:
    """`make serve` only: one partner at the dev issuer that may receive every portable category
    (`dsar token --partner demo-partner`)."""
    await db.execute(
        """INSERT INTO partners (client_id, issuer, name, contact, categories)
           VALUES ($1, $2, 'Demo Partner Ltd', 'privacy@demo-partner.invalid', $3)
           ON CONFLICT (client_id) DO NOTHING""",
        DEMO_PARTNER,
        issuer,
        [c.key for c in catalogue if c.portable],
    )


async def list_partners(db: asyncpg.Pool | Conn) -> list[PartnerRecord]:
    return [PartnerRecord.of(r) for r in await db.fetch("SELECT * FROM partners ORDER BY 1")]


async def disable_partner(db: asyncpg.Pool | Conn, client_id: str) -> bool:
    """A disabled partner gets nothing more; its grants stay on record."""
    done = await db.fetchval(
        "UPDATE partners SET disabled_at = coalesce(disabled_at, now()) WHERE client_id = $1 "
        "RETURNING true",
        client_id,
    )
    return bool(done)


def portable(catalogue: Catalogue, categories: Sequence[str]) -> list[str]:
    if not categories:
        raise GrantRefused("Choose at least one category.")
    known = set(catalogue.keys)
    if not set(categories) <= known:
        raise GrantRefused("Unknown category.")
    if any(not catalogue.category(k).portable for k in categories):
        raise GrantRefused("Inferred data is not portable, so it cannot be transferred.")
    return [k for k in catalogue.keys if k in categories]


def dumps(value: Any) -> str:
    # JSON goes as text and is cast in SQL: the same with or without a jsonb codec.
    return orjson.dumps(value).decode()
