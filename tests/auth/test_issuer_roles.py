"""Each kind of caller from its own issuer only, with two real providers (tests/idp): the
customers' login and the workforce's. A `support:read` token from the customers' provider is no
agent, a `dsar:self` login at the workforce's is no customer, and a partner's client id at the
wrong provider is not that partner."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

import asyncpg
import httpx
import pytest

from api.issuers import IssuerRoles
from api.settings import DEV_ISSUER, Settings
from api.tokens import InvalidToken
from catalogue import Catalogue
from domain.partners import GrantRefused, add_partner
from domain.principals import Customer, Partner, PrivacyStaff, SupportAgent
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id
from tests._factories import linked_person

from .idp import AUDIENCE, IdP, app_client

READ = "query($id: ID!) { subject(id: $id, access: {ticket: %s, reason: %s}) { id } }"
TRANSFERS = "{ portabilityTransfers { grant } }"


async def ask(
    client: httpx.AsyncClient, token: str, query: str, **variables: str
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )


def refused(r: httpx.Response) -> bool:
    return (
        r.status_code == 401
        and 'error="invalid_token"' in r.headers["www-authenticate"]
        and ("does not sign in this kind of caller" in r.headers["www-authenticate"])
    )


async def test_agents_customers_and_partners_each_from_their_own_issuer(
    idp: IdP,
    start_idp: Callable[[], IdP],
    settings: Settings,
    deployment: Deployment,
    stores: Stores,
    catalogue: Catalogue,
) -> None:
    workforce = start_idp()
    person = await linked_person(stores, catalogue, idp.issuer, "role", 83)
    db = await asyncpg.connect(deployment.service_dsn)
    try:
        # The providers both know the client `partner-three`; it is registered at the customers'.
        # (No other test registers it; a rerun in one session finds it there already.)
        with contextlib.suppress(GrantRefused):
            await add_partner(
                db,
                catalogue,
                client_id="partner-three",
                issuer=idp.issuer,
                name="Partner Three",
                categories=["profile"],
            )
    finally:
        await db.close()
    configured = replace(
        settings, issuers=(idp.issuer,), support_issuer=workforce.issuer, audience=AUDIENCE
    )
    read = READ % ('"SUP-7001"', '"Customer asked what we hold"')
    async with app_client(configured) as client:
        # An agent from the customers' provider: refused. From the workforce's: an agent.
        wrong_agent = await idp.client_token("agent-1", "support:read")
        r = await ask(client, wrong_agent, read, id=str(subject_id(person)))
        assert refused(r), (r.status_code, r.text)
        agent = await workforce.client_token("agent-1", "support:read")
        r = await ask(client, agent, read, id=str(subject_id(person)))
        assert r.status_code == 200 and r.json()["data"]["subject"]["id"] == str(subject_id(person))

        # A person's login at the workforce's provider is no customer; at the customers', it is.
        staff_login = await workforce.customer_token(person)
        r = await ask(client, staff_login, "{ me { id } }")
        assert refused(r), (r.status_code, r.text)
        login = await idp.customer_token(person)
        r = await ask(client, login, "{ me { id } }")
        assert r.json()["data"]["me"]["id"] == str(subject_id(person))

        # partner-three is registered at the customers' provider: from the other it is refused.
        impostor = await workforce.client_token("partner-three", "portability:pull")
        assert refused(await ask(client, impostor, TRANSFERS))
        genuine = await idp.client_token("partner-three", "portability:pull")
        r = await ask(client, genuine, TRANSFERS)
        assert r.status_code == 200 and r.json()["data"] == {"portabilityTransfers": []}


async def test_the_workforce_issuer_when_none_is_named() -> None:
    one = IssuerRoles.of(["https://login.example"], None, None)
    assert one.workforce == {"https://login.example"}  # one provider for everyone
    two = IssuerRoles.of(["https://a.example", "https://b.example"], None, None)
    assert two.workforce == frozenset()  # several, none named: no agents at all
    demo = IssuerRoles.of(["https://a.example", DEV_ISSUER], None, DEV_ISSUER)
    assert demo.workforce == {DEV_ISSUER}
    named = IssuerRoles.of(["https://a.example"], "https://staff.example", None)
    assert named.workforce == {"https://staff.example"}
    agent = SupportAgent(issuer="https://a.example", sub="g1")
    with pytest.raises(InvalidToken):
        await two.check(agent)
    with pytest.raises(InvalidToken):
        await named.check(agent)
    # Privacy staff likewise: only the workforce's issuer.
    with pytest.raises(InvalidToken):
        await named.check(PrivacyStaff(issuer="https://a.example", sub="s1"))
    await named.check(PrivacyStaff(issuer="https://staff.example", sub="s1"))
    await named.check(Customer(issuer="https://a.example", sub="p", subject_id=None))
    with pytest.raises(InvalidToken):
        await named.check(Customer(issuer="https://staff.example", sub="p", subject_id=None))

    async def registered_at_a(client_id: str) -> str | None:
        return "https://a.example" if client_id == "p1" else None

    await named.check(Partner(issuer="https://a.example", client_id="p1"), registered_at_a)
    await named.check(Partner(issuer="https://b.example", client_id="p9"), registered_at_a)
    with pytest.raises(InvalidToken):
        await named.check(Partner(issuer="https://b.example", client_id="p1"), registered_at_a)
    with pytest.raises(InvalidToken):
        await named.check(Partner(issuer="https://a.example", client_id="p1"))  # no look-up
