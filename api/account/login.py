"""Signing in and out: the provider's authorization code flow, or the demo sign-in.

A sign-in always ends in a new session id (the one used while it was in progress is deleted),
and an export or a grant asked for before a step-up is made as soon as the person is back.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.account import _grant_form, downloads, partners
from api.account.provider import LOGIN_ERRORS
from api.account.sessions import Session, SessionData, clear_cookie, set_cookie
from api.account.site import AccountSite
from api.account.web import first, login_hint, safe_next
from domain.services import Services
from stores.seed import DEMO_HANDLES

log = logging.getLogger("dsar.account")

DEMO_TOKEN_TTL = 3600
NOT_FINISHED = (
    "Sign-in did not finish",
    "It may have been cancelled, taken too long, or been started in another window. "
    "Please sign in again.",
)


def routes(site: AccountSite) -> list[Route]:
    async def login(request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        step_up = request.query_params.get("step_up") == "1"
        if site.provider is None:
            if site.demo:
                query = urlencode({"next": next_url or "", "step_up": "1" if step_up else ""})
                target = "/account/demo?" + query
                return RedirectResponse(target, status_code=303)
            return site.message(
                request,
                503,
                "Signing in is not available",
                "Please contact us to ask for your data.",
            )
        store = site.sessions(request)
        session = await site.session(request) or await store.start()
        params: dict[str, str | int] = {}
        hint = login_hint(request.query_params.get("login_hint"))
        if step_up:
            # RFC 9470 section 4: ask for the authentication the API said it needs, and a login
            # made now (OpenID Connect Core 3.1.2.1: prompt=login, max_age).
            params["acr_values"] = " ".join(site.settings.step_up_acr_values)
            params["max_age"] = site.settings.step_up_max_age
            params["prompt"] = "login"
            hint = hint or session.data.sub
        if hint:
            params["login_hint"] = hint
        session.data.next = next_url
        session.data.step_up = step_up
        try:
            response = await site.provider.authorize_redirect(
                request, session, str(request.url_for("account_callback")), **params
            )
        except LOGIN_ERRORS as exc:
            log.warning("identity provider unavailable", extra={"error": type(exc).__name__})
            return site.message(
                request,
                503,
                "Signing in is not available right now",
                "Please try again in a few minutes.",
                headers={"Retry-After": "30"},
            )
        await store.save(session)
        if session.is_new:
            set_cookie(response, request, session)
        return response

    async def callback(request: Request) -> Response:
        session = await site.session(request)
        if site.provider is None or session is None or not session.data.oauth:
            return site.message(request, 400, *NOT_FINISHED)
        try:
            token = await site.provider.finish(request, session)
        except LOGIN_ERRORS as exc:
            log.info("sign-in failed", extra={"error": type(exc).__name__})
            await site.sessions(request).save(session)  # the state is spent either way
            return site.message(request, 400, *NOT_FINISHED, session=session)
        expires_at = token.get("expires_at")
        ends_at = float(expires_at) if isinstance(expires_at, int | float) else time.time() + 300
        return await _signed_in(site, request, session, token["access_token"], ends_at)

    async def demo_page(request: Request) -> Response:
        if not site.demo:
            return site.message(request, 404, "Page not found", "There is no page at this address.")
        session = await site.session(request) or await site.sessions(request).start()
        people = await demo_people(site.services(request))
        next_url = safe_next(request.query_params.get("next"))
        # The person signed in now (a step-up, a session that ended) is the one chosen.
        current = session.data.sub if session.data.sub in DEMO_HANDLES else None
        reason = None
        if request.query_params.get("step_up") == "1":
            what = (
                "letting a company receive your data"
                if session.data.pending_grant
                else "preparing and downloading a copy of your data"
            )
            reason = (
                f"Before {what} we ask you to confirm it is you, with a fresh sign-in. "
                + (f"Sign in again as {current.capitalize()}: " if current else "")
                + "what you asked for is done as soon as you are back."
            )
        return site.render(
            request,
            "demo.html",
            {"people": people, "next": next_url, "current": current, "reason": reason},
            session=session,
        )

    async def demo_sign_in(request: Request) -> Response:
        dev = request.app.state.security.dev
        if not site.demo or dev is None:
            return site.message(request, 404, "Page not found", "There is no page at this address.")
        checked = await site.posted(request, "Please reload the demo sign-in and try again.")
        if isinstance(checked, Response):
            return checked
        session, fields = checked
        handle = first(fields, "subject")
        if handle not in DEMO_HANDLES:
            return site.message(request, 400, "Please choose a person", "Go back and pick one.")
        session.data.next = safe_next(first(fields, "next")) or session.data.next
        # A strong login made just now: the demo stands for a full sign-in with a second factor.
        token = dev.mint("customer", handle, ttl=DEMO_TOKEN_TTL)
        return await _signed_in(site, request, session, token, time.time() + DEMO_TOKEN_TTL)

    async def logout(request: Request) -> Response:
        session = await site.session(request)
        if session is None:
            response: Response = RedirectResponse("/account/signed-out", status_code=303)
            clear_cookie(response, request)
            return response
        checked = await site.posted(request, "Please reload the page and sign out again.")
        if isinstance(checked, Response):
            return checked
        await site.sessions(request).delete(session)
        target = "/account/signed-out"
        if site.provider is not None:
            after = str(request.url_for("account_signed_out"))
            target = await site.provider.end_session_url(after) or target
        response = RedirectResponse(target, status_code=303)
        clear_cookie(response, request)
        return response

    async def signed_out(request: Request) -> Response:
        return site.signed_out(request, "You are signed out. Your data is no longer shown here.")

    return [
        Route("/login", login, name="account_login"),
        Route("/callback", callback, name="account_callback"),
        Route("/demo", demo_page, name="account_demo"),
        Route("/demo", demo_sign_in, methods=["POST"], name="account_demo_sign_in"),
        Route("/logout", logout, methods=["POST"], name="account_logout"),
        Route("/signed-out", signed_out, name="account_signed_out"),
    ]


async def _signed_in(
    site: AccountSite, request: Request, previous: Session, access_token: str, ends_at: float
) -> Response:
    data = SessionData(
        access_token=access_token, stepped_up_at=time.time() if previous.data.step_up else None
    )
    principal = await site.principal(request, Session("-", data))
    if principal is None:
        await site.sessions(request).delete(previous)
        response = site.message(
            request,
            403,
            "This sign-in cannot be used here",
            "It is not a customer sign-in for this service. Please sign in with your own account.",
        )
        clear_cookie(response, request)
        return response
    data.sub = principal.sub
    data.draft = previous.data.draft  # a form sent as the last session ended, shown again
    session = await site.sessions(request).sign_in(previous, data, ends_at)
    pending = previous.data.pending_export
    if pending is not None and principal.subject_id is not None:
        return await downloads.make(site, request, session, principal, pending)
    choice = _grant_form.pending(previous.data.pending_grant or {})
    if choice is not None and principal.subject_id is not None:
        return await partners.give(site, request, session, principal, choice)
    return site.redirect(previous.data.next or "/account", session, request)


async def demo_people(services: Services) -> list[tuple[str, str]]:
    """Each demo person and what they have, counted from the stores as the page will show it
    (a hint written by hand goes stale when the seed changes)."""
    catalogue = services.catalogue
    people = []
    for handle in DEMO_HANDLES:
        sid = await services.stores.subject_by_handle(handle)
        counts = (await services.stores.counts([sid]))[sid] if sid is not None else {}
        held = [c for c in catalogue if counts.get(c.key)]
        if not held:
            people.append((handle, "Has no data yet (the demo is not seeded)."))
            continue
        records = sum(counts[c.key] for c in held)
        text = f"{len(held)} of {len(list(catalogue))} categories, {records:,} records"
        if len(held) <= 4:
            text += ": " + ", ".join(c.title for c in held)
        extras = [w for key, w in DEMO_EXTRAS if counts.get(key)]
        if extras:
            text += ", with " + " and ".join(extras)
        people.append((handle, text + "."))
    return people


# What makes a demo person worth choosing, beyond their counts.
DEMO_EXTRAS = (("recordings", "recordings"), ("sensitive", "government ID numbers"))
