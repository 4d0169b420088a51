"""Two server processes against one database (issue 19, item 7): what must hold across
processes lives in the service database, never in one process's memory. A limit holds when its
requests are split between processes, a person's running export is the same one whichever
process is asked, a cursor made by one process pages on in the other, and a token verified and
cached by one is taken by the other.
"""

from __future__ import annotations

import asyncio

import httpx

from api.devissuer import DevIssuer
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests.reliability._people import (
    START,
    auth,
    gql,
    grant,
    partner,
    people,
    request_export,
)
from tests.reliability.conftest import ServerFactory

LIMIT = 3
PAGE = """
query($after: String) { me { webAnalytics(first: 2, after: $after) {
  edges { node { pageUrl } } pageInfo { hasNextPage endCursor } } } }
"""


async def test_two_processes_share_limits_and_cursors(
    start_server: ServerFactory,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    deployment: Deployment,
) -> None:
    env = {"DSAR_PARTNER_TRANSFERS_PER_MINUTE": str(LIMIT)}
    a, b = await start_server(env=env), await start_server(env=env)
    client_id = await partner(deployment.migration_dsn, catalogue)
    partner_token = issuer.mint("partner", client_id)
    everyone = await people(stores, catalogue, issuer, LIMIT + 2)
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=60) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=60) as on_b,
    ):
        # The partner's transfer limit: four starts at once, two on each process, make three.
        grants = [await grant(on_a, t, client_id) for _, t in everyone[: LIMIT + 1]]
        answers = await asyncio.gather(
            *(
                (on_a if n % 2 else on_b).post(
                    "/graphql",
                    json={"query": START, "variables": {"grant": g}},
                    headers=auth(partner_token),
                )
                for n, g in enumerate(grants)
            )
        )
        kinds = sorted(r.json()["data"]["startTransfer"]["__typename"] for r in answers)
        assert kinds == ["Export"] * LIMIT + ["TransferLimitReached"], kinds

        # One running export per person: asked on one process, asked again on the other, the
        # same export.
        _, token = everyone[-1]
        first = await request_export(on_a, token)
        again = await request_export(on_b, token)
        assert again["id"] == first["id"]

        # A page cursor signed by one process is read by the other (the shared secret key),
        # and the token each verified and cached on its own is taken by both.
        _, reader = everyone[0]
        page_a = (await gql(on_a, reader, PAGE, after=None))["me"]["webAnalytics"]
        cursor = page_a["pageInfo"]["endCursor"]
        assert page_a["pageInfo"]["hasNextPage"] and cursor
        on_other = (await gql(on_b, reader, PAGE, after=cursor))["me"]["webAnalytics"]
        on_same = (await gql(on_a, reader, PAGE, after=cursor))["me"]["webAnalytics"]
        assert on_other == on_same and on_other["edges"]
        assert on_other["edges"] != page_a["edges"]
