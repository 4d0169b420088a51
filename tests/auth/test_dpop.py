"""DPoP (RFC 9449) against the app, with sender-constrained tokens from the real provider
(tests/idp binds a token to the key of the client's DPoP proof: `cnf.jkt`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from joserfc.jwk import ECKey, OctKey

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from stores.deployment import Deployment
from stores.registry import Stores
from tests._factories import linked_person

from .dpop import DPoPKey, ath
from .forge import b64
from .idp import AUDIENCE, IdP, app_client

URL = "http://test/graphql"
ME = {"query": "{ me { id } }"}
TRANSFERS = {"query": "{ portabilityTransfers { grant } }"}


@pytest.fixture
async def dpop_app(
    idp: IdP, settings: Settings, deployment: Deployment
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(replace(settings, issuers=(idp.issuer,), audience=AUDIENCE)) as c:
        yield c


def challenge(r: httpx.Response) -> str:
    assert r.status_code == 401, (r.status_code, r.text)
    header = r.headers["www-authenticate"]
    assert header.startswith('DPoP realm="dsar", error="'), header
    assert 'algs="ES256' in header
    return header


def proof_refused(r: httpx.Response, why: str) -> None:
    header = challenge(r)
    assert 'error="invalid_dpop_proof"' in header and why in header, header
    assert r.json()["errors"][0]["extensions"]["code"] == "INVALID_DPOP_PROOF"


async def test_a_dpop_bound_token_needs_its_proof(
    idp: IdP, dpop_app: httpx.AsyncClient, stores: Stores, catalogue: Catalogue
) -> None:
    person = await linked_person(stores, catalogue, idp.issuer, "dpop", 85)
    key = DPoPKey()
    token = await idp.customer_token(person, dpop=key)

    # Sent as a bearer token, a bound token is refused (RFC 9449 section 7.2).
    r = await dpop_app.post(URL, json=ME, headers={"Authorization": f"Bearer {token}"})
    assert 'error="invalid_token"' in challenge(r)
    assert "bound to a key (DPoP)" in r.headers["www-authenticate"]
    # With the DPoP scheme and no proof: the proof is missing.
    r = await dpop_app.post(URL, json=ME, headers={"Authorization": f"DPoP {token}"})
    proof_refused(r, "Send a DPoP proof")

    # With its proof, the person is served; the same proof again is a replay (the token's
    # verification is cached by then: api/token_cache.py; the proof is still checked).
    proof = key.proof("POST", URL, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    r = await dpop_app.post(URL, json=ME, headers=headers)
    assert r.status_code == 200 and r.json()["data"]["me"]["id"], r.text
    proof_refused(await dpop_app.post(URL, json=ME, headers=headers), "used before")
    # A fresh proof for the next request works; the scheme is case-insensitive.
    fresh = {"Authorization": f"dpop {token}", "DPoP": key.proof("POST", URL, token)}
    assert (await dpop_app.post(URL, json=ME, headers=fresh)).status_code == 200


async def test_a_proof_is_used_once_across_processes(
    idp: IdP, settings: Settings, deployment: Deployment
) -> None:
    """The replay cache is in the service database: a second process refuses a proof the first
    one took."""
    key = DPoPKey()
    token = await idp.client_token("partner-one", "portability:pull", dpop=key)
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", URL, token)}
    configured = replace(settings, issuers=(idp.issuer,), audience=AUDIENCE)
    async with app_client(configured) as first, app_client(configured) as second:
        r = await first.post(URL, json=TRANSFERS, headers=headers)
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        proof_refused(await second.post(URL, json=TRANSFERS, headers=headers), "used before")


def forged(key: DPoPKey, token: str, **change: Any) -> str:
    return key.proof("POST", URL, token, **change)


def unsigned(key: DPoPKey, token: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.key.as_dict(private=False)}
    claims = {"jti": "x", "htm": "POST", "htu": URL, "iat": int(time.time()), "ath": ath(token)}
    # With a signature segment, so the refusal is the algorithm's, not the shape's.
    return f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}.c2ln"


PROOFS: dict[str, tuple[Callable[[DPoPKey, str], str | list[str]], str]] = {
    "two headers": (lambda k, t: [forged(k, t), forged(k, t)], "exactly one DPoP header"),
    "not a JWT": (lambda k, t: "not.a.jwt", "well-formed"),
    "typ JWT": (lambda k, t: forged(k, t, header={"typ": "JWT"}), "typ must be dpop+jwt"),
    "alg none": (unsigned, "algorithm"),
    "alg HS256": (
        lambda k, t: k.proof(
            "POST", URL, t, header={"alg": "HS256"}, signer=OctKey.generate_key(256)
        ),
        "algorithm",
    ),
    "no jwk": (lambda k, t: forged(k, t, header={"jwk": None}), "jwk"),
    "private jwk": (
        lambda k, t: forged(k, t, header={"jwk": k.key.as_dict(private=True)}),
        "jwk",
    ),
    "signed by another key": (
        lambda k, t: forged(k, t, signer=ECKey.generate_key("P-256")),
        "signature does not verify",
    ),
    "htm GET": (lambda k, t: k.proof("GET", URL, t), "htm"),
    "htu elsewhere": (lambda k, t: k.proof("POST", "http://test/exports/x", t), "htu"),
    "htu other host": (lambda k, t: k.proof("POST", "https://test/graphql", t), "htu"),
    "iat 10 minutes ago": (lambda k, t: forged(k, t, iat=int(time.time()) - 600), "iat"),
    "iat in the future": (lambda k, t: forged(k, t, iat=int(time.time()) + 600), "iat"),
    "no jti": (lambda k, t: forged(k, t, jti=None), "jti"),
    "no ath": (lambda k, t: forged(k, t, ath=None), "ath"),
    "ath of another token": (lambda k, t: forged(k, t, ath=ath(t + "x")), "ath"),
    "another key's proof": (
        lambda k, t: DPoPKey().proof("POST", URL, t),
        "other than the one the access token is bound to",
    ),
}


@pytest.mark.parametrize("case", list(PROOFS))
async def test_every_proof_check_refuses(case: str, idp: IdP, dpop_app: httpx.AsyncClient) -> None:
    key = DPoPKey()
    token = await idp.client_token("partner-one", "portability:pull", dpop=key)
    make, why = PROOFS[case]
    proofs = make(key, token)
    headers = [("Authorization", f"DPoP {token}")]
    headers += [("DPoP", p) for p in ([proofs] if isinstance(proofs, str) else proofs)]
    r = await dpop_app.post(URL, json=TRANSFERS, headers=headers)
    proof_refused(r, why)
    # The same token with a good proof still works: nothing above spent it.
    good = {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", URL, token)}
    assert (await dpop_app.post(URL, json=TRANSFERS, headers=good)).status_code == 200


async def test_htu_ignores_query_and_normalises(idp: IdP, dpop_app: httpx.AsyncClient) -> None:
    key = DPoPKey()
    token = await idp.client_token("partner-one", "portability:pull", dpop=key)
    for htu in ("HTTP://TEST:80/graphql", "http://test/./graphql?ignored=1#frag"):
        headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", htu, token)}
        r = await dpop_app.post(URL + "?x=1", json=TRANSFERS, headers=headers)
        assert r.status_code == 200, r.text


async def test_the_download_route_checks_its_own_method_and_uri(
    idp: IdP, dpop_app: httpx.AsyncClient
) -> None:
    key = DPoPKey()
    token = await idp.client_token("partner-one", "portability:pull", dpop=key)
    url = "http://test/exports/00000000-0000-4000-8000-000000000000"
    wrong = {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", URL, token)}
    proof_refused(await dpop_app.get(url, headers=wrong), "htm")
    right = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, token)}
    assert (await dpop_app.get(url, headers=right)).status_code == 404  # no such export


async def test_bindings_the_service_cannot_check_are_refused(
    client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """A token bound to a client certificate (RFC 8705 `x5t#S256`) needs mutual TLS, which this
    service does not terminate: refused, never taken as a bearer token. A DPoP scheme with an
    unbound token is refused too."""
    mtls = issuer.mint(
        "customer", "alice", cnf={"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}
    )
    r = await client.post(URL, json=ME, headers={"Authorization": f"Bearer {mtls}"})
    assert r.status_code == 401
    assert "cannot check" in r.headers["www-authenticate"]
    both = issuer.mint("customer", "alice", cnf={"jkt": DPoPKey().jkt, "x5t#S256": "abc"})
    r = await client.post(URL, json=ME, headers={"Authorization": f"Bearer {both}"})
    assert r.status_code == 401 and "cannot check" in r.headers["www-authenticate"]
    plain = issuer.mint("customer", "alice")
    key = DPoPKey()
    r = await client.post(
        URL,
        json=ME,
        headers={"Authorization": f"DPoP {plain}", "DPoP": key.proof("POST", URL, plain)},
    )
    assert 'error="invalid_token"' in challenge(r) and "not bound" in r.headers["www-authenticate"]
    # A dev-issuer token bound to a DPoP key works with its proof, as the provider's do.
    bound = issuer.mint("customer", "alice", cnf={"jkt": key.jkt})
    r = await client.post(
        URL,
        json=ME,
        headers={"Authorization": f"DPoP {bound}", "DPoP": key.proof("POST", URL, bound)},
    )
    assert r.status_code == 200 and r.json()["data"]["me"]["id"]


async def test_scope_and_step_up_challenges_of_a_dpop_request_are_dpop_s(
    idp: IdP, dpop_app: httpx.AsyncClient, stores: Stores, catalogue: Catalogue
) -> None:
    """RFC 9449 section 7.1: a request made with a DPoP-bound token is answered with the DPoP
    scheme's challenges, insufficient_scope and insufficient_user_authentication too."""
    key = DPoPKey()
    partner = await idp.client_token("partner-one", "portability:pull", dpop=key)
    r = await dpop_app.post(
        URL,
        json=ME,
        headers={"Authorization": f"DPoP {partner}", "DPoP": key.proof("POST", URL, partner)},
    )
    assert r.status_code == 403
    assert r.headers["www-authenticate"].startswith('DPoP realm="dsar", error="insufficient_scope"')

    person = await linked_person(stores, catalogue, idp.issuer, "dpopweak", 86)
    weak = await idp.customer_token(person, acr="urn:dsar:acr:weak", dpop=key)
    query = {"query": "mutation { requestExport(input: {format: JSON}) { __typename } }"}
    r = await dpop_app.post(
        URL,
        json=query,
        headers={"Authorization": f"DPoP {weak}", "DPoP": key.proof("POST", URL, weak)},
    )
    assert r.json()["data"]["requestExport"]["__typename"] == "StrongerLoginRequired"
    strong = await idp.customer_token(person, dpop=key)
    query = {
        "query": "mutation { requestExport(input: {format: JSON}) "
        "{ ... on Export { downloadUrl } } }"
    }
    r = await dpop_app.post(
        URL,
        json=query,
        headers={"Authorization": f"DPoP {strong}", "DPoP": key.proof("POST", URL, strong)},
    )
    link = r.json()["data"]["requestExport"]["downloadUrl"]
    r = await dpop_app.get(
        link, headers={"Authorization": f"DPoP {weak}", "DPoP": key.proof("GET", link, weak)}
    )
    assert r.status_code == 401
    header = r.headers["www-authenticate"]
    assert header.startswith('DPoP realm="dsar", error="insufficient_user_authentication"')
    r = await dpop_app.get(
        link, headers={"Authorization": f"DPoP {strong}", "DPoP": key.proof("GET", link, strong)}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
