"""What dsar itself holds about a person, for their own copy (`service/` in the bundle).

The company's categories come from its stores; these records are dsar's own, in the service
database, and are personal data about the person too: the logins linked to them, the copies
they asked for, the partners they authorised and what was sent, and who else looked at their
data (the access history the account page shows). Each is read under the person's own scope.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from domain import exports, portability
from domain.audit import access_log
from stores.scope import scoped

# What each file holds, said in the manifest and index.html.
DESCRIPTIONS = {
    "logins": "The sign-ins linked to you: the identity provider and your id there.",
    "exports": "The copies of your data you asked for, and what became of each.",
    "grants": "The partners you authorised to receive some of your data, and until when.",
    "transfers": "What was sent to each partner you authorised.",
    "access_history": "Each time a partner or a support agent looked at your data, and why.",
}


async def own_records(db: asyncpg.Pool, subject_id: UUID) -> dict[str, list[dict[str, Any]]]:
    async with scoped(db, subject=subject_id) as conn:
        logins = await conn.fetch(
            "SELECT issuer, sub, linked_at FROM identity_links WHERE subject_id = $1 "
            "ORDER BY linked_at, issuer",
            subject_id,
        )
    copies = await exports.for_subject(db, subject_id, 100)
    grants = await portability.grants_of(db, subject_id)
    sent = await portability.transfers_of(db, [g.id for g in grants], subject_id=subject_id)
    names = await portability.partner_names(db, sorted({g.partner for g in grants}))
    looked = await access_log(db, subject_id, 1000)
    looked_names = await portability.partner_names(
        db, sorted({a.client_id for a in looked if a.client_id})
    )
    return {
        "logins": [dict(r) for r in logins],
        "exports": [
            {
                "id": e.id,
                "purpose": e.purpose,
                "format": e.format,
                "categories": list(e.categories),
                "status": e.status,
                "requested_at": e.created_at,
                "finished_at": e.finished_at,
                "records": e.records,
                "bytes": e.bytes,
                "sha256": e.sha256,
                "downloads": e.downloads,
            }
            for e in copies
        ],
        "grants": [
            {
                "id": g.id,
                "partner": names.get(g.partner, g.partner),
                "categories": list(g.categories),
                "given_at": g.created_at,
                "expires_at": g.expires_at,
                "revoked_at": g.revoked_at,
            }
            for g in grants
        ],
        "transfers": [
            {
                "grant": g.id,
                "partner": names.get(g.partner, g.partner),
                "categories": list(t.categories),
                "status": t.status,
                "requested_at": t.created_at,
                "sent_at": t.generated_at,
                "records": t.records,
                "bytes": t.bytes,
            }
            for g in grants
            for t in sent.get(g.id, [])
        ],
        "access_history": [
            {
                "at": a.at,
                "who": looked_names.get(a.client_id, a.client_id)
                if a.client_id
                else ("a support agent" if a.actor_kind == "support" else a.actor_kind),
                "ticket": a.ticket,
                "action": a.action,
                "outcome": a.outcome,
                "categories": list(a.categories),
                "refusal": a.refusal,
                "ending": a.ending,
                "sent_bytes": a.sent_bytes,
            }
            for a in looked
        ],
    }
