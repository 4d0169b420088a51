"""Tokens from a real OpenID provider (tests/idp): real flows, real keys, real rotation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from api.authn import (
    InsufficientScope,
    StepUpRequired,
    authenticate,
    require_scope,
    require_strong_login,
)
from api.challenges import error_response
from api.jwks import IssuerKeys
from api.tokens import InvalidToken, TokenValidator
from domain.principals import Customer, Partner, SupportAgent

from .forge import new_key, sign, sign_raw, unverified
from .idp import AUDIENCE, OTHER_AUDIENCE, STRONG, IdP

MakeKeys = Callable[..., IssuerKeys]
ALICE = uuid.UUID("00000000-0000-4000-8000-0000000000a1")


async def resolve(issuer: str, sub: str) -> uuid.UUID | None:
    return ALICE if sub == "alice" else None


class Recorder(httpx.AsyncBaseTransport):
    """The real network, with a log of every URL asked for."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def validator_for(idp: IdP, make_keys: MakeKeys, **options: Any) -> TokenValidator:
    keys = make_keys(idp.issuer, **options)
    assert await keys.refresh()
    return TokenValidator({idp.issuer: keys}, AUDIENCE)


async def test_customer_token_from_a_real_code_flow(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    token = await idp.customer_token("alice")
    header, _ = unverified(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    principal = await authenticate(f"Bearer {token}", validator, resolve)
    assert isinstance(principal, Customer)
    assert (principal.issuer, principal.sub, principal.subject_id) == (idp.issuer, "alice", ALICE)
    assert principal.authentication.acr == STRONG
    require_strong_login(principal, (STRONG,), 300)


async def test_partner_and_agent_tokens(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    for client in ("partner-one", "partner-two"):
        token = await idp.client_token(client, "portability:pull")
        partner = await authenticate(f"Bearer {token}", validator, resolve)
        assert isinstance(partner, Partner) and partner.client_id == client
        with pytest.raises(InsufficientScope):
            require_scope(partner, "dsar:self")  # a partner token on `me`
    agent = await authenticate(
        f"Bearer {await idp.client_token('agent-1', 'support:read')}", validator, resolve
    )
    assert isinstance(agent, SupportAgent) and agent.sub == "agent-1"


async def test_customer_token_on_a_partner_operation_is_403(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    customer = await authenticate(f"Bearer {await idp.customer_token('alice')}", validator, resolve)
    with pytest.raises(InsufficientScope) as caught:
        require_scope(customer, "portability:pull")
    response = error_response(caught.value)
    assert response.status_code == 403
    assert 'scope="portability:pull"' in response.headers["www-authenticate"]


async def test_id_token_of_the_same_provider_is_refused(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    tokens = await idp.code_tokens(f"alice|{STRONG}|0")
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(tokens["id_token"])
    assert caught.value.code == "type"  # signed by the right key, but not an access token


async def test_token_for_another_audience_is_refused(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    tokens = await idp.code_tokens(f"alice|{STRONG}|0", resource=OTHER_AUDIENCE)
    assert unverified(tokens["access_token"])[1]["aud"] == OTHER_AUDIENCE
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(tokens["access_token"])
    assert caught.value.code == "invalid_claim:aud"


async def test_token_of_an_untrusted_issuer_is_refused(
    idp: IdP, start_idp: Callable[[], IdP], make_keys: MakeKeys
) -> None:
    validator = await validator_for(idp, make_keys)
    stranger = start_idp()
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(await stranger.customer_token("alice"))
    assert caught.value.code == "issuer"


@pytest.mark.parametrize(("acr", "age"), [("urn:dsar:acr:weak", 0), (STRONG, 7200)])
async def test_weak_or_stale_login_needs_step_up(
    idp: IdP, make_keys: MakeKeys, acr: str, age: int
) -> None:
    validator = await validator_for(idp, make_keys)
    token = await idp.customer_token("alice", acr=acr, age=age)
    principal = await authenticate(f"Bearer {token}", validator, resolve)
    assert isinstance(principal, Customer)
    assert principal.authentication.acr == acr
    with pytest.raises(StepUpRequired) as caught:
        require_strong_login(principal, (STRONG,), 300)
    response = error_response(caught.value)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="dsar", error="insufficient_user_authentication", '
        f'acr_values="{STRONG}", max_age="300"'
    )


async def test_resigned_copies_of_real_tokens_are_refused(idp: IdP, make_keys: MakeKeys) -> None:
    validator = await validator_for(idp, make_keys)
    real = await idp.client_token("partner-one", "portability:pull")
    header, claims = unverified(real)
    attacker = new_key(kid=header["kid"])
    # The same claims, or a promotion to another role, signed by someone else under the real kid.
    for payload in (claims, {**claims, "scope": "support:read"}, {**claims, "sub": "alice"}):
        with pytest.raises(InvalidToken) as caught:
            await validator.validate(sign_raw(attacker, header, payload))
        assert caught.value.code == "signature"
    # Signed by a key the provider never had, with the real header otherwise.
    with pytest.raises(InvalidToken):
        await validator.validate(sign(new_key(), claims))


async def test_key_rotation_is_picked_up_without_restart(
    start_idp: Callable[[], IdP], make_keys: MakeKeys
) -> None:
    idp = start_idp()
    recorder = Recorder()
    clock = [0.0]
    keys = make_keys(idp.issuer, transport=recorder, clock=lambda: clock[0])
    assert await keys.refresh()
    validator = TokenValidator({idp.issuer: keys}, AUDIENCE)
    old = await idp.client_token("partner-one", "portability:pull")
    assert await validator.validate(old)

    clock[0] += 31  # past the cooldown since the last fetch
    new_kid = await idp.rotate()
    fresh = await idp.client_token("partner-one", "portability:pull")
    assert unverified(fresh)[0]["kid"] == new_kid
    before = len(recorder.urls)
    assert await validator.validate(fresh)
    assert len(recorder.urls) - before == 2  # exactly one discovery + JWKS refetch
    assert await validator.validate(old)  # the old key is still published
    assert await validator.validate(await idp.client_token("partner-two", "portability:pull"))
    assert len(recorder.urls) - before == 2  # nothing more fetched

    # Another unknown kid inside the cooldown: refused, and no fetch.
    with pytest.raises(InvalidToken):
        await validator.validate(sign(new_key(), unverified(fresh)[1]))
    assert len(recorder.urls) - before == 2


async def test_provider_down_cached_keys_still_work(
    start_idp: Callable[[], IdP], make_keys: MakeKeys
) -> None:
    idp = start_idp()
    keys = make_keys(idp.issuer, cooldown=0)
    assert await keys.refresh()
    validator = TokenValidator({idp.issuer: keys}, AUDIENCE)
    token = await idp.client_token("partner-one", "portability:pull")
    idp.stop()

    started = time.monotonic()
    assert await validator.validate(token)
    assert not await keys.refresh()
    assert keys.loaded and validator.ready
    with pytest.raises(InvalidToken) as caught:  # an unknown kid while down: 401, not a crash
        await validator.validate(sign(new_key(), unverified(token)[1]))
    assert caught.value.code == "unknown_key"
    assert time.monotonic() - started < 5


async def test_not_ready_until_keys_were_loaded_once(
    start_idp: Callable[[], IdP], make_keys: MakeKeys
) -> None:
    idp = start_idp()
    issuer = idp.issuer
    idp.stop()
    keys = make_keys(issuer)
    assert not await keys.refresh()
    assert not keys.loaded
    assert not TokenValidator({issuer: keys}, AUDIENCE).ready
