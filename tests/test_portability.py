"""Portability: a person grants a partner, the partner pulls exactly that, and nothing else."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
import pytest
from joserfc import jwe
from joserfc.jwk import RSAKey
from starlette.applications import Starlette

from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from domain.partners import DEMO_PARTNER, add_partner, ensure_demo_partner, list_partners
from stores.deployment import Deployment
from stores.registry import Stores
from stores.seed import subject_id
from tests._cli import cli_env, run_cli
from tests._factories import insert_marked
from tests._tokens import TEST_ISSUER

GRANT = """
mutation($input: GrantInput!) {
  grantPortability(input: $input) {
    __typename
    ... on PortabilityGrant { id partner partnerName categories status expiresAt }
    ... on StrongerLoginRequired { acrValues maxAge }
    ... on GrantRefusedError { message }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokePortability(id: $id) {
    __typename ... on PortabilityGrant { status revokedAt } ... on GrantNotFound { message }
  }
}
"""
GRANTS = """
{ portabilityGrants { id partner status
    transfers { id status records bytes sha256 categories downloadUrl } } }
"""
TRANSFERS = "{ portabilityTransfers { grant subjectRef categories expiresAt lastTransferAt } }"
START = """
mutation($grant: ID!, $format: ExportFormat! = JSON, $full: Boolean! = false) {
  startTransfer(grant: $grant, format: $format, full: $full) {
    __typename
    ... on Export { id status categories downloadUrl }
    ... on TransferNotAllowed { message }
    ... on TransferLimitReached { retryAfter }
  }
}
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def gql(client: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=auth(token)
    )
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
async def partners(db: asyncpg.Connection, catalogue: Catalogue) -> tuple[str, str]:
    """Two partners of this test alone, at the test issuer."""
    names = (f"partner-a-{uuid4().hex[:8]}", f"partner-b-{uuid4().hex[:8]}")
    for name in names:
        await add_partner(
            db,
            catalogue,
            client_id=name,
            issuer=TEST_ISSUER,
            name=name.upper(),
            categories=["profile", "web_analytics", "preferences"],
        )
    return names


@pytest.fixture
async def person(stores: Stores, catalogue: Catalogue) -> str:
    handle = f"port-{uuid4().hex[:10]}"
    await insert_marked(stores, catalogue, handle, f"P{uuid4().hex[:8]}", 78)
    return handle


async def give(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, partner: str, **extra: Any
) -> dict[str, Any]:
    data = await gql(
        client,
        issuer.mint("customer", person),
        GRANT,
        input={"partner": partner, "categories": ["profile", "web_analytics"], **extra},
    )
    grant: dict[str, Any] = data["grantPortability"]
    return grant


async def audit_rows(db: asyncpg.Connection, action: str, outcome: str, grant: str) -> int:
    n = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = $1 AND outcome = $2 "
        "AND purpose->>'grant_id' = $3",
        action,
        outcome,
        grant,
    )
    assert isinstance(n, int)
    return n


def bundle(body: bytes) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    z = zipfile.ZipFile(io.BytesIO(body))
    return z, orjson.loads(z.read("manifest.json"))


async def test_a_partner_pulls_exactly_what_was_granted(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
    db: asyncpg.Connection,
) -> None:
    a, _ = partners
    grant = await give(client, issuer, person, a)
    assert grant["__typename"] == "PortabilityGrant" and grant["status"] == "LIVE"
    assert grant["partnerName"] == a.upper()

    token = issuer.mint("partner", a)
    listed = (await gql(client, token, TRANSFERS))["portabilityTransfers"]
    mine = [t for t in listed if t["grant"] == grant["id"]]
    assert len(mine) == 1 and mine[0]["categories"] == ["profile", "web_analytics"]
    assert str(subject_id(person)) not in mine[0]["subjectRef"]

    started = (await gql(client, token, START, grant=grant["id"]))["startTransfer"]
    assert started["__typename"] == "Export"
    r = await client.get(started["downloadUrl"], headers=auth(token))
    assert r.status_code == 200
    z, manifest = bundle(r.content)
    assert sorted(n for n in z.namelist() if n.startswith("data/")) == [
        "data/profile.json",
        "data/web_analytics.json",
    ]
    assert manifest["purpose"] == "portability"
    # The partner's own pairwise reference, never dsar's subject id (issue 16, item 7).
    assert "subject_id" not in manifest
    assert manifest["subject_ref"] == mine[0]["subjectRef"]
    assert str(subject_id(person)) not in r.content.decode("latin-1")
    for name in z.namelist():
        assert str(subject_id(person)) not in name
        assert str(subject_id(person)).encode() not in z.read(name)

    # The person sees which partner received what, and when.
    seen = (await gql(client, issuer.mint("customer", person), GRANTS))["portabilityGrants"]
    sent = next(g for g in seen if g["id"] == grant["id"])["transfers"]
    assert [(t["status"], t["bytes"], t["downloadUrl"]) for t in sent] == [
        ("COMPLETED", len(r.content), None)
    ]
    assert await audit_rows(db, "grant.create", "allowed", grant["id"]) == 1
    assert await audit_rows(db, "transfer.start", "allowed", grant["id"]) == 1
    assert await audit_rows(db, "transfer.download", "allowed", grant["id"]) == 1


async def test_everyone_else_gets_nothing_and_is_audited(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
    db: asyncpg.Connection,
) -> None:
    a, b = partners
    grant = await give(client, issuer, person, a)
    started = (await gql(client, issuer.mint("partner", a), START, grant=grant["id"]))[
        "startTransfer"
    ]
    other = issuer.mint("partner", b)
    refused = (await gql(client, other, START, grant=grant["id"]))["startTransfer"]
    assert refused["__typename"] == "TransferNotAllowed"
    assert grant["id"] not in str(await gql(client, other, TRANSFERS))
    for token in (other, issuer.mint("customer", person), issuer.mint("support", "agent-1")):
        r = await client.get(started["downloadUrl"], headers=auth(token))
        assert r.status_code == 404
    scope_denials = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'access.denied' AND outcome = 'denied'"
    )
    for token in (issuer.mint("customer", person), issuer.mint("support", "agent-1")):
        r = await client.post(
            "/graphql",
            json={"query": START, "variables": {"grant": grant["id"]}},
            headers=auth(token),
        )
        assert r.status_code == 403
    assert await audit_rows(db, "transfer.start", "denied", grant["id"]) == 1
    assert await audit_rows(db, "transfer.download", "denied", grant["id"]) == 3
    after = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'access.denied' AND outcome = 'denied'"
    )
    assert after >= scope_denials + 2


async def test_a_revocation_holds_at_once_whatever_the_token(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
) -> None:
    a, _ = partners
    grant = await give(client, issuer, person, a)
    token = issuer.mint("partner", a)  # stays valid for an hour
    started = (await gql(client, token, START, grant=grant["id"]))["startTransfer"]
    revoked = (await gql(client, issuer.mint("customer", person), REVOKE, id=grant["id"]))[
        "revokePortability"
    ]
    assert revoked["__typename"] == "PortabilityGrant" and revoked["status"] == "REVOKED"
    assert (await client.get(started["downloadUrl"], headers=auth(token))).status_code == 404
    again = (await gql(client, token, START, grant=grant["id"]))["startTransfer"]
    assert again["__typename"] == "TransferNotAllowed"
    assert grant["id"] not in str(await gql(client, token, TRANSFERS))
    # Nobody else can revoke it, nor learn that it exists.
    other = await gql(client, issuer.mint("customer", "bob"), REVOKE, id=grant["id"])
    assert other["revokePortability"]["__typename"] == "GrantNotFound"


async def test_an_expired_grant_or_a_disabled_partner_gives_nothing(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
    db: asyncpg.Connection,
) -> None:
    a, b = partners
    expired = await give(client, issuer, person, a)
    await db.execute(
        "UPDATE grants SET created_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 day' WHERE id = $1",
        UUID(expired["id"]),
    )
    result = await gql(client, issuer.mint("partner", a), START, grant=expired["id"])
    assert result["startTransfer"]["__typename"] == "TransferNotAllowed"
    grants = (await gql(client, issuer.mint("customer", person), GRANTS))["portabilityGrants"]
    assert next(g for g in grants if g["id"] == expired["id"])["status"] == "EXPIRED"

    live = await give(client, issuer, person, b)
    await db.execute("UPDATE partners SET disabled_at = now() WHERE client_id = $1", b)
    result = await gql(client, issuer.mint("partner", b), START, grant=live["id"])
    assert result["startTransfer"]["__typename"] == "TransferNotAllowed"
    refused = await give(client, issuer, person, b)
    assert refused == {"__typename": "GrantRefusedError", "message": "Unknown partner."}


@pytest.mark.parametrize(
    ("categories", "message"),
    [
        (["geolocation"], "Inferred data is not portable, so it cannot be transferred."),
        (["payment"], "This partner may not receive some of these categories."),
        (["nope"], "Unknown category."),
        ([], "Choose at least one category."),
    ],
)
async def test_grants_are_checked(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
    categories: list[str],
    message: str,
) -> None:
    refused = await give(client, issuer, person, partners[0], categories=categories)
    assert refused == {"__typename": "GrantRefusedError", "message": message}


async def test_a_grant_needs_a_strong_recent_login_and_a_sane_expiry(
    client: httpx.AsyncClient, issuer: DevIssuer, person: str, partners: tuple[str, str]
) -> None:
    weak = issuer.mint("customer", person, acr="urn:dsar:acr:weak")
    data = await gql(client, weak, GRANT, input={"partner": partners[0], "categories": ["profile"]})
    assert data["grantPortability"]["__typename"] == "StrongerLoginRequired"
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused = await give(client, issuer, person, partners[0], expiresAt=past)
    assert refused["__typename"] == "GrantRefusedError"


async def test_delta_transfers_hold_only_what_is_new(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
    stores: Stores,
) -> None:
    a, _ = partners
    grant = await give(client, issuer, person, a)
    token = issuer.mint("partner", a)

    async def pull(full: bool = False) -> dict[str, Any]:
        started = (await gql(client, token, START, grant=grant["id"], full=full))["startTransfer"]
        r = await client.get(started["downloadUrl"], headers=auth(token))
        assert r.status_code == 200
        return bundle(r.content)[1]

    first = await pull()
    assert first["since"] is None
    events = first["categories"]["web_analytics"]["records"]
    assert events > 0
    found = await stores.person_of(subject_id(person))
    assert found is not None
    analytics = await asyncpg.connect(stores.config.store("analytics").dsn)
    await analytics.execute(
        "INSERT INTO page_events (anonymous_id, ts, session_id, url, event_type) "
        "VALUES ($1, now() + interval '1 second', 's-new', 'https://example.test/new', 'click')",
        found.of("anonymous_id")[0],
    )
    await analytics.close()
    delta = await pull()
    assert delta["since"] is not None
    assert delta["categories"]["web_analytics"]["records"] == 1
    assert delta["categories"]["profile"]["records"] == 1  # no date: always whole
    whole = await pull(full=True)
    assert whole["categories"]["web_analytics"]["records"] == events + 1


async def test_per_grant_limit_is_a_429(
    settings: Settings,
    deployment: Deployment,
    stores: Stores,
    issuer: DevIssuer,
    person: str,
    partners: tuple[str, str],
) -> None:
    strict = replace(settings, grant_transfers_per_day=2)
    app: Starlette = create_app(strict, key_sources={TEST_ISSUER: issuer.key_set()})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            a, _ = partners
            grant = await give(client, issuer, person, a)
            token = issuer.mint("partner", a)
            first = (await gql(client, token, START, grant=grant["id"]))["startTransfer"]
            assert (await client.get(first["downloadUrl"], headers=auth(token))).is_success
            second = await gql(client, token, START, grant=grant["id"], format="CSV")
            assert second["startTransfer"]["__typename"] == "Export"
            # A delta since the first: a third transfer today, one more than allowed.
            r = await client.post(
                "/graphql",
                json={"query": START, "variables": {"grant": grant["id"]}},
                headers=auth(token),
            )
            assert r.status_code == 429
            refused = r.json()["data"]["startTransfer"]
            assert refused["__typename"] == "TransferLimitReached"
            assert r.headers["retry-after"] == str(refused["retryAfter"])


def test_partners_are_managed_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    name = f"cli-partner-{uuid4().hex[:8]}"
    env = cli_env(settings, tmp_path, DSAR_OIDC_ISSUER=TEST_ISSUER)
    key = tmp_path / "partner.jwk"
    key.write_bytes(orjson.dumps(RSAKey.generate_key(2048).as_dict(private=False)))
    ec = tmp_path / "ec.jwk"
    ec.write_bytes(orjson.dumps({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}))
    refused = run_cli(
        "partner",
        "add",
        name,
        "--name",
        "X",
        "--categories",
        "profile",
        "--public-key",
        str(ec),
        env=env,
    )
    assert (refused.returncode, refused.stderr.strip()) == (
        2,
        "dsar partner: public key: encrypted delivery needs an RSA key (kty RSA, for RSA-OAEP-256)",
    )
    added = run_cli(
        "partner",
        "add",
        name,
        "--name",
        "Other Bank",
        "--categories",
        "profile,preferences",
        "--public-key",
        str(key),
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert f"{name}\tOther Bank\tactive encrypted\tprofile,preferences" in added.stdout
    again = run_cli("partner", "add", name, "--name", "X", "--categories", "profile", env=env)
    assert (again.returncode, again.stderr.strip()) == (
        2,
        f"dsar partner: partner '{name}' exists already",
    )
    inferred = run_cli(
        "partner", "add", name + "-2", "--name", "X", "--categories", "geolocation", env=env
    )
    assert inferred.returncode == 2 and "Inferred data is not portable" in inferred.stderr
    assert run_cli("partner", "disable", name, env=env).returncode == 0
    listed = run_cli("partner", "list", env=env)
    assert f"{name}\tOther Bank\tdisabled encrypted" in listed.stdout
    missing = run_cli("partner", "disable", "nobody-" + name, env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


async def test_a_partner_with_a_key_receives_a_bundle_only_it_can_open(
    client: httpx.AsyncClient,
    issuer: DevIssuer,
    person: str,
    db: asyncpg.Connection,
    catalogue: Catalogue,
) -> None:
    name = f"sealed-{uuid4().hex[:8]}"
    key = RSAKey.generate_key(2048, parameters={"use": "enc"})
    await add_partner(
        db,
        catalogue,
        client_id=name,
        issuer=TEST_ISSUER,
        name="Sealed",
        categories=["profile"],
        public_jwk=key.as_dict(private=False),
    )
    grant = await give(client, issuer, person, name, categories=["profile"])
    token = issuer.mint("partner", name)
    started = (await gql(client, token, START, grant=grant["id"]))["startTransfer"]
    r = await client.get(started["downloadUrl"], headers=auth(token))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/jose"
    assert r.headers["content-disposition"].endswith('.zip.jwe"')
    # A compact JWE: five base64url parts, so no ZIP header (b"PK\x03\x04") and no plain text.
    assert re.fullmatch(rb"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}", r.content), r.content[:80]
    assert str(subject_id(person)).encode() not in r.content
    registry = jwe.JWERegistry(algorithms=["RSA-OAEP-256", "A256GCM"])
    opened = jwe.decrypt_compact(r.content, key, registry=registry)
    _, manifest = bundle(opened.plaintext)
    assert "subject_id" not in manifest and manifest["subject_ref"]
    assert str(subject_id(person)).encode() not in opened.plaintext
    assert list(manifest["categories"]) == ["profile"]


async def test_the_demo_partner_is_there_once_and_never_gets_inferred_data(
    db: asyncpg.Connection, catalogue: Catalogue
) -> None:
    await ensure_demo_partner(db, catalogue, "urn:dsar:dev-issuer")
    await ensure_demo_partner(db, catalogue, "urn:dsar:dev-issuer")
    demo = [p for p in await list_partners(db) if p.client_id == DEMO_PARTNER]
    assert len(demo) == 1
    assert "geolocation" not in demo[0].categories
    assert set(demo[0].categories) == {c.key for c in catalogue if c.portable}


async def test_per_partner_minute_limit_is_a_429(
    settings: Settings,
    deployment: Deployment,
    stores: Stores,
    catalogue: Catalogue,
    issuer: DevIssuer,
    partners: tuple[str, str],
) -> None:
    strict = replace(settings, partner_transfers_per_minute=1)
    app: Starlette = create_app(strict, key_sources={TEST_ISSUER: issuer.key_set()})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            a, _ = partners
            grants = []
            for n in range(2):  # two people, one partner
                handle = f"minute-{n}-{uuid4().hex[:8]}"
                await insert_marked(stores, catalogue, handle, f"N{uuid4().hex[:8]}", 80 + n)
                grants.append((await give(client, issuer, handle, a))["id"])
            token = issuer.mint("partner", a)
            first = await gql(client, token, START, grant=grants[0])
            assert first["startTransfer"]["__typename"] == "Export"
            r = await client.post(
                "/graphql",
                json={"query": START, "variables": {"grant": grants[1]}},
                headers=auth(token),
            )
            assert r.status_code == 429
            refused = r.json()["data"]["startTransfer"]
            assert refused["__typename"] == "TransferLimitReached"
            assert 1 <= refused["retryAfter"] <= 61
            # Another partner is not held back by this one's pace.
            other = await gql(client, issuer.mint("partner", partners[1]), TRANSFERS)
            assert other["portabilityTransfers"] == []
