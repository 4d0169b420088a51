"""One account page of one app: its templates, its sign-in options, the caller's session."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.account.provider import Provider
from api.account.sessions import Session, SessionStore, clear_cookie, session_id, set_cookie
from api.account.web import csrf_ok, form, templates
from api.authn import authenticate
from api.graphql_http import AUTH_ERRORS
from api.settings import Settings
from domain.errors import STORE_FAILURES
from domain.principals import SCOPE_CUSTOMER, Customer
from domain.services import Services

log = logging.getLogger("dsar.account")

RETRY_FORM = "Please go back to your data page, reload it and try again."


class AccountSite:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.templates: Jinja2Templates = templates()
        self.provider = Provider.configured(settings)

    @property
    def demo(self) -> bool:
        """The demo sign-in: only with the development issuer, never in production."""
        return self.settings.dev_issuer

    def services(self, request: Request) -> Services:
        services: Services = request.app.state.services
        return services

    def sessions(self, request: Request) -> SessionStore:
        s = self.settings
        return SessionStore(self.services(request).db, s.secret_key, s.account_session_ttl)

    async def session(self, request: Request) -> Session | None:
        return await self.sessions(request).load(session_id(request))

    async def principal(self, request: Request, session: Session | None) -> Customer | None:
        """The customer behind the session's access token, validated on every request like a
        bearer token (expiry, issuer, audience, signature); None when it no longer holds."""
        validator = request.app.state.security.validator
        if session is None or session.data.access_token is None or validator is None:
            return None
        security = request.app.state.security
        try:
            principal = await authenticate(
                "Bearer " + session.data.access_token,
                validator,
                self.services(request).stores.subject_for_login,
            )
            await security.roles.check(principal)
        except AUTH_ERRORS as exc:
            log.info("account session token refused", extra={"error": type(exc).__name__})
            return None
        if not isinstance(principal, Customer) or SCOPE_CUSTOMER not in principal.scopes:
            return None
        return principal

    async def posted(
        self, request: Request, retry: str = RETRY_FORM
    ) -> tuple[Session, dict[str, list[str]]] | Response:
        """The session and fields of a POSTed form whose CSRF token holds, or the 403 page."""
        session = await self.session(request)
        if session is None:
            # Before the body is read: a form from nobody's session costs no more than this.
            return self.message(request, 403, "This form has expired", retry, session=session)
        fields = await form(request)
        if fields is None or not csrf_ok(request, session, fields):
            return self.message(request, 403, "This form has expired", retry, session=session)
        return session, fields

    async def posted_by_person(
        self, request: Request, keep: tuple[str, ...] = ()
    ) -> tuple[Session, dict[str, list[str]], Customer] | Response:
        """As `posted`, from a person still signed in (else back to the page to sign in). A
        form whose `keep` names its fields, sent after the session ended, is kept as a draft
        and the person is sent to sign in: nothing is done, the choices wait on the page."""
        if keep:
            session = await self.session(request)
            ended = session_id(request) is not None and (
                session is None or await self.principal(request, session) is None
            )
            if ended:
                return await self.keep_for_later(request, session, keep)
        checked = await self.posted(request)
        if isinstance(checked, Response):
            return checked
        session, fields = checked
        principal = await self.principal(request, session)
        if principal is None:
            return self.redirect("/account", None, request)
        return session, fields, principal

    async def keep_for_later(
        self, request: Request, session: Session | None, keep: tuple[str, ...]
    ) -> Response:
        fields = await form(request) or {}
        store = self.sessions(request)
        if session is not None:
            await store.delete(session)  # its sign-in no longer holds
        fresh = await store.start()
        fresh.data.draft = {
            "form": keep[0],
            "fields": {k: v for k, v in fields.items() if k in keep[1:]},
        }
        await store.save(fresh)
        return self.redirect("/account/login?next=/account", fresh, request)

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        session: Session | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        catalogue = self.services(request).catalogue
        values: dict[str, Any] = {
            "signed_in": session is not None and session.signed_in,
            "csrf": session.data.csrf if session is not None else "",
            "demo": self.demo,
            "provider_login": self.provider is not None,
            "controller": catalogue.controller,
            **(context or {}),
        }
        response = self.templates.TemplateResponse(
            request, name, values, status_code=status, headers=headers
        )
        if session is not None and session.is_new:
            set_cookie(response, request, session)
        return response

    def message(
        self,
        request: Request,
        status: int,
        title: str,
        text: str,
        *,
        session: Session | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A friendly page for anything that went wrong: what happened and what to do next,
        never a detail of why (no token, no value, no stack trace)."""
        return self.render(
            request,
            "message.html",
            {"title": title, "text": text},
            session=session,
            status=status,
            headers=headers,
        )

    def signed_out(self, request: Request, text: str) -> Response:
        """The sign-in page, with the session cookie cleared."""
        response = self.render(request, "signin.html", {"notice": text}, status=200)
        clear_cookie(response, request)
        return response

    def redirect(self, url: str, session: Session | None, request: Request) -> Response:
        # 303: after a form POST the browser follows with GET (RFC 9110 section 15.4.4).
        response = RedirectResponse(url, status_code=303)
        if session is not None and session.is_new:
            set_cookie(response, request, session)
        return response


class PageErrors:
    """An account page that fails (the service database or a store down, a fault of ours) is
    still a page, saying what happened and what to do, never the edge's JSON: a person reads it
    in a browser. Once a response has begun (a download streaming) the failure goes on to the
    edge, which ends the response."""

    def __init__(self, app: ASGIApp, site: AccountSite) -> None:
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or scope["type"] != "http" or isinstance(exc, HTTPException):
                raise  # HTTPException: Starlette's own answer (no such page, method) stands
            request = Request(scope, receive)
            if isinstance(exc, STORE_FAILURES):
                log.warning("backing store unavailable", extra={"error": type(exc).__name__})
                response = self.site.message(
                    request,
                    503,
                    "This page cannot be shown right now",
                    "One of our systems did not answer. Please try again in a few minutes.",
                    headers={"Retry-After": "30"},
                )
            else:
                log.error("unhandled error", extra={"error": type(exc).__name__})
                rid = scope.get("state", {}).get("request_id", "")
                response = self.site.message(
                    request,
                    500,
                    "Something went wrong on our side",
                    "Please try again later. If it happens again, contact us and quote "
                    f"this reference: {rid}.",
                )
            await response(scope, receive, send)
