"""The account page as an OAuth client of the identity provider (authlib's Starlette client).

Authorization code with PKCE (RFC 7636, S256) and an OpenID Connect nonce, done on the server:
the code, the verifier and the tokens never reach the browser. authlib keeps its state data in
`request.session`; here that is the `oauth` part of our own sealed server-side session, never
a cookie.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx

# authlib 1.9 prefers the `httpx2` package and warns on import when only `httpx` (our HTTP
# client everywhere else) is installed; its client works the same on either.
from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]  # no hints
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from api.account.sessions import Session
from api.settings import Settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]  # no hints
    from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]  # no hints

SCOPE = "openid dsar:self"
# Whatever can go wrong between the provider and us on the way back: a refused or cancelled
# login, a mismatched state, a bad ID token, the provider unreachable.
LOGIN_ERRORS = (AuthlibBaseError, JoseError, httpx.HTTPError, ValueError, KeyError, TypeError)


class Provider:
    def __init__(self, issuer: str, client_id: str, client_secret: str, audience: str) -> None:
        self.issuer = issuer
        self.audience = audience
        oauth = OAuth()
        oauth.register(
            "dsar",
            client_id=client_id,
            client_secret=client_secret or None,
            server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic" if client_secret else "none",
            },
        )
        self._client: Any = oauth.create_client("dsar")

    @classmethod
    def configured(cls, settings: Settings) -> Provider | None:
        if not settings.account_client_id or not settings.issuers:
            return None
        return cls(
            settings.issuers[0],
            settings.account_client_id,
            settings.account_client_secret,
            settings.audience,
        )

    async def authorize_redirect(
        self, request: Request, session: Session, redirect_uri: str, **params: str | int
    ) -> Response:
        """A redirect to the authorization endpoint; the state, PKCE verifier and nonce go into
        the session, which the caller saves."""
        request.scope["session"] = session.data.oauth
        # RFC 8707: ask for a token for this API, whatever the provider's default audience.
        response: Response = await self._client.authorize_redirect(
            request, redirect_uri, resource=self.audience, **params
        )
        return response

    async def finish(self, request: Request, session: Session) -> dict[str, Any]:
        """Checks the state, swaps the code (with the verifier) for tokens and validates the ID
        token (signature, issuer, audience, nonce). Raises one of `LOGIN_ERRORS`."""
        request.scope["session"] = session.data.oauth
        token: dict[str, Any] = await self._client.authorize_access_token(request)
        if not isinstance(token.get("access_token"), str):
            raise ValueError("no access token")
        return token

    async def end_session_url(self, after: str) -> str | None:
        """RP-Initiated Logout 1.0: where to end the provider's own session too, so that the
        next person at this browser is asked to sign in. No `id_token_hint`: no token ever
        travels through the browser; `client_id` names us instead (section 2)."""
        try:
            metadata = await self._client.load_server_metadata()
        except LOGIN_ERRORS:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self._client.client_id, "post_logout_redirect_uri": after}
        return str(httpx.URL(endpoint, params=params))
