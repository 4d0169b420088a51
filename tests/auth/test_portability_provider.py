"""Portability end to end with tokens from a real OpenID provider: the person logs in with
authorization code + PKCE, the partner with client credentials; dsar fetches the provider's keys
itself, as in production."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import asyncpg
import httpx
import orjson

from api.settings import Settings
from catalogue import Catalogue
from domain.partners import add_partner
from stores.deployment import Deployment
from stores.registry import Stores
from tests._factories import linked_person

from .idp import AUDIENCE, IdP, app_client

GRANT = """mutation($p: String!) { grantPortability(input: {partner: $p,
  categories: ["profile", "preferences"]}) { __typename ... on PortabilityGrant { id } } }"""
START = """mutation($g: ID!) { startTransfer(grant: $g) {
  __typename ... on Export { downloadUrl } } }"""
REVOKE = "mutation($g: ID!) { revokePortability(id: $g) { __typename } }"


async def test_a_partner_pulls_a_grant_made_at_the_real_provider(
    idp: IdP,
    settings: Settings,
    deployment: Deployment,
    stores: Stores,
    catalogue: Catalogue,
) -> None:
    handle = await linked_person(stores, catalogue, idp.issuer, "idp", 79)
    db = await asyncpg.connect(deployment.migration_dsn)
    try:
        await add_partner(
            db,
            catalogue,
            client_id="partner-one",
            issuer=idp.issuer,
            name="Partner One",
            categories=["profile", "preferences"],
        )
    finally:
        await db.close()

    async with app_client(replace(settings, issuers=(idp.issuer,), audience=AUDIENCE)) as client:

        async def call(token: str, query: str, **variables: str) -> httpx.Response:
            return await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )

        person = await idp.customer_token(handle)
        granted = (await call(person, GRANT, p="partner-one")).json()["data"]
        grant = granted["grantPortability"]["id"]

        partner = await idp.client_token("partner-one", "portability:pull")
        started = (await call(partner, START, g=grant)).json()["data"]["startTransfer"]
        r = await client.get(started["downloadUrl"], headers={"Authorization": f"Bearer {partner}"})
        assert r.status_code == 200
        z = zipfile.ZipFile(io.BytesIO(r.content))
        manifest = orjson.loads(z.read("manifest.json"))
        assert set(manifest["categories"]) == {"profile", "preferences"}

        other = await idp.client_token("partner-two", "portability:pull")
        refused = (await call(other, START, g=grant)).json()["data"]["startTransfer"]
        assert refused["__typename"] == "TransferNotAllowed"
        gone = await client.get(
            started["downloadUrl"], headers={"Authorization": f"Bearer {other}"}
        )
        assert gone.status_code == 404

        # A weak login at the provider cannot grant; the revocation holds at once.
        weak = await idp.customer_token(handle, acr="urn:dsar:acr:weak")
        stepped = (await call(weak, GRANT, p="partner-one")).json()["data"]
        assert stepped["grantPortability"]["__typename"] == "StrongerLoginRequired"
        assert (await call(person, REVOKE, g=grant)).json()["data"]["revokePortability"]
        after = (await call(partner, START, g=grant)).json()["data"]["startTransfer"]
        assert after["__typename"] == "TransferNotAllowed"
