"""The trusted issuers of one app: key sets, the token validator, and the request's principal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from uuid import UUID

from starlette.requests import Request

from api.authn import authenticate
from api.devissuer import DevIssuer
from api.dpop import check_proof
from api.issuers import IssuerRoles
from api.jwks import IssuerKeys, KeySource
from api.settings import DEV_ISSUER, Settings
from api.token_cache import TokenCache
from api.tokens import InvalidToken, TokenValidator
from domain.partners import registered_issuer
from domain.principals import Customer, Principal
from domain.replay import first_use
from domain.services import Services

KEY_REFRESH_SECONDS = 300.0


@dataclass(slots=True)
class Security:
    validator: TokenValidator | None
    roles: IssuerRoles
    remote: list[IssuerKeys] = field(default_factory=list)
    dev: DevIssuer | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, extra: Mapping[str, KeySource]) -> Security:
        sources: dict[str, KeySource] = dict(extra)
        customers = [*extra, *settings.issuers]
        remote_issuers = list(dict.fromkeys([*settings.issuers, settings.support_issuer]))
        remote = [IssuerKeys(url) for url in remote_issuers if url is not None]
        sources.update({k.issuer: k for k in remote})
        dev = None
        if settings.dev_issuer:
            dev = DevIssuer(settings.home / "dev-issuer", DEV_ISSUER, settings.audience)
            sources[DEV_ISSUER] = dev.key_set()
            customers.append(DEV_ISSUER)
        validator = (
            TokenValidator(sources, settings.audience, cache=TokenCache()) if sources else None
        )
        roles = IssuerRoles.of(
            customers, settings.support_issuer, DEV_ISSUER if settings.dev_issuer else None
        )
        security = cls(validator, roles, remote, dev)
        # Keys load in the background: start-up does not wait for the provider, and readiness
        # stays false until they loaded once.
        security._tasks = [
            asyncio.create_task(k.run_refresh_loop(KEY_REFRESH_SECONDS)) for k in remote
        ]
        return security

    @property
    def ready(self) -> bool:
        return self.validator is not None and self.validator.ready

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for keys in self.remote:
            await keys.aclose()

    async def principal(self, request: Request, services: Services) -> Principal:
        """Raises the typed errors of `api.authn`; `api.challenges` answers them."""
        if self.validator is None:
            raise InvalidToken("no_issuer")
        headers = request.headers.getlist("authorization")
        if len(headers) > 1:
            raise InvalidToken("malformed")  # two Authorization headers: refuse, never pick one

        async def proof(token: str, jkt: str) -> None:
            await check_proof(
                request.headers.getlist("dpop"),
                method=request.method,
                uri=str(request.url),
                access_token=token,
                jkt=jkt,
                first_use=lambda scope, value, ttl: first_use(services.db, scope, value, ttl),
            )

        anchors: dict[UUID, str] = {}

        async def subject_for_login(issuer: str, sub: str) -> UUID | None:
            # The subject and its anchor in one statement: the request's person is found from
            # the anchor without asking the service database again (schema/context.py).
            sid, anchor = await services.stores.login(issuer, sub)
            if sid is not None and anchor is not None:
                anchors[sid] = anchor
            return sid

        principal = await authenticate(
            headers[0] if headers else None, self.validator, subject_for_login, proof
        )
        if isinstance(principal, Customer) and principal.subject_id in anchors:
            principal = replace(principal, anchor=anchors[principal.subject_id])
        await self.roles.check(
            principal, lambda client_id: registered_issuer(services.db, client_id)
        )
        return principal
