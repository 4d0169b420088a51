"""`portabilityPartners`: the partners a person may choose among, and only for a person."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.partners import add_partner, disable_partner
from tests._tokens import TEST_ISSUER

PARTNERS = "{ portabilityPartners { clientId name contact categories } }"


async def ask(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": PARTNERS}, headers={"Authorization": f"Bearer {token}"}
    )


async def test_a_person_sees_enabled_partners_by_name_with_what_each_may_receive(
    client: httpx.AsyncClient, issuer: DevIssuer, db: asyncpg.Connection, catalogue: Catalogue
) -> None:
    tag = uuid4().hex[:8]
    # Registered out of policy order and out of name order; the third one is then disabled.
    for client_id, name, categories, contact in (
        (f"zz-{tag}", f"Beta {tag}", ["preferences", "profile"], None),
        (f"aa-{tag}", f"alpha {tag}", ["web_analytics"], "privacy@alpha.invalid"),
        (f"mm-{tag}", f"Gamma {tag}", ["profile"], None),
    ):
        await add_partner(
            db,
            catalogue,
            client_id=client_id,
            issuer=TEST_ISSUER,
            name=name,
            categories=categories,
            contact=contact,
        )
    assert await disable_partner(db, f"mm-{tag}")

    r = await ask(client, issuer.mint("customer", "alice"))
    assert r.status_code == 200
    mine = [p for p in r.json()["data"]["portabilityPartners"] if tag in p["clientId"]]
    assert mine == [
        {
            "clientId": f"aa-{tag}",
            "name": f"alpha {tag}",
            "contact": "privacy@alpha.invalid",
            "categories": ["web_analytics"],
        },
        {
            "clientId": f"zz-{tag}",
            "name": f"Beta {tag}",
            "contact": None,
            "categories": ["profile", "preferences"],
        },
    ]


async def test_a_partner_row_written_by_hand_never_offers_inferred_data(
    client: httpx.AsyncClient, issuer: DevIssuer, db: asyncpg.Connection, catalogue: Catalogue
) -> None:
    inferred = [c.key for c in catalogue if not c.portable]
    assert inferred, "the policy has inferred data"
    client_id = f"raw-{uuid4().hex[:8]}"
    await db.execute(
        "INSERT INTO partners (client_id, issuer, name, categories) VALUES ($1, $2, $3, $4)",
        client_id,
        TEST_ISSUER,
        "Raw Row Ltd",
        ["profile", *inferred],
    )
    r = await ask(client, issuer.mint("customer", "alice"))
    row = next(p for p in r.json()["data"]["portabilityPartners"] if p["clientId"] == client_id)
    assert row["categories"] == ["profile"]


async def test_only_a_person_may_list_partners(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    for token in (issuer.mint("partner", "partner-a"), issuer.mint("support", "agent-1")):
        r = await ask(client, token)
        assert r.status_code == 403
        assert "insufficient_scope" in r.headers["www-authenticate"]
