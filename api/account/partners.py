"""Letting a partner receive some of the person's data until a date, and revoking it.

A grant needs a strong, recent sign-in (as a download does): when the login is too weak or too
old the choice waits in the session, the person goes through a fresh sign-in and the grant is
given on their return (api/account/login.py). A form that does not hold up is shown again with
each problem next to its field and listed above the form (WCAG 2.1 SC 3.3.1, 3.3.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.account import _partners
from api.account._grant_form import Choice, check, expires_at, expiry_range
from api.account.data import DataUnavailable
from api.account.downloads import just_signed_in, step_up
from api.account.sessions import Session
from api.account.site import AccountSite
from api.account.web import when
from domain.errors import Refused, StepUpRequired
from domain.principals import Customer

NOTICE_ANCHOR = "/account#partners-notice"
RETRY = {"Retry-After": "30"}
UNAVAILABLE = (
    "This cannot be done right now",
    "One of our systems did not answer. Please try again in a few minutes.",
)


def routes(site: AccountSite) -> list[Route]:
    async def ask(request: Request) -> Response:
        keep = ("grant", "partner", "categories", "expires")
        checked = await site.posted_by_person(request, keep=keep)
        if isinstance(checked, Response):
            return checked
        session, fields, principal = checked
        return await give(site, request, session, principal, Choice.of(fields))

    async def take_back(request: Request) -> Response:
        checked = await site.posted_by_person(request)
        if isinstance(checked, Response):
            return checked
        session, _, principal = checked
        try:
            revoked = await _partners.revoke(
                site.services(request),
                request.app.state.schema,
                principal,
                request.state.request_id,
                request.path_params["id"],
            )
        except DataUnavailable:
            return site.message(request, 503, *UNAVAILABLE, session=session, headers=RETRY)
        if revoked is None:
            return site.message(
                request,
                404,
                "This permission was not found",
                "It may be mistyped, or it may belong to another account. Your data page lists "
                "the companies you let receive your data.",
                session=session,
            )
        session.data.partner_notice = (
            f"{revoked.partner_name} can no longer receive your data: you revoked its access. "
            "What it received before is still listed below."
        )
        await site.sessions(request).save(session)
        return site.redirect(NOTICE_ANCHOR, session, request)

    return [
        Route("/grants", ask, methods=["POST"], name="account_grant"),
        Route("/grants/{id}/revoke", take_back, methods=["POST"], name="account_grant_revoke"),
    ]


async def give(
    site: AccountSite, request: Request, session: Session, principal: Customer, choice: Choice
) -> Response:
    """Gives the grant asked for; on a step-up, keeps the choice in the session for after it."""
    services, schema = site.services(request), request.app.state.schema
    rid = request.state.request_id
    try:
        listed = await _partners.partners(services, schema, principal, rid)
    except DataUnavailable:
        return site.message(request, 503, *UNAVAILABLE, session=session, headers=RETRY)
    partner = next((p for p in listed if p.client_id == choice.partner), None)
    if partner is None:
        return site.message(
            request,
            404,
            "This company cannot receive data from us",
            "It may no longer be one of our partners. Your data page lists those that can.",
            session=session,
        )
    now = datetime.now(UTC)
    errors = check(choice, partner, now)
    if errors:
        return form_page(site, request, session, partner, choice, errors)
    try:
        given = await _partners.grant(
            services,
            schema,
            principal,
            rid,
            partner=partner.client_id,
            categories=choice.categories,
            expires_at=expires_at(choice.expires, now),
        )
    except StepUpRequired:
        if not just_signed_in(session):
            session.data.pending_grant = asdict(choice)
            session.data.pending_export = None  # the latest thing asked for is what is finished
            await site.sessions(request).save(session)
        return step_up(
            site, request, session, "/account", what="Letting a company receive your data"
        )
    except Refused as exc:
        return form_page(site, request, session, partner, choice, {"form": str(exc)})
    except DataUnavailable:
        return site.message(request, 503, *UNAVAILABLE, session=session, headers=RETRY)
    session.data.partner_notice = (
        f"{given.partner_name} may now receive your {_words(given.categories)} until "
        f"{when(given.expires_at)}. You can revoke this at any time below."
    )
    await site.sessions(request).save(session)
    return site.redirect(NOTICE_ANCHOR, session, request)


def form_page(
    site: AccountSite,
    request: Request,
    session: Session,
    partner: _partners.PartnerView,
    choice: Choice,
    errors: dict[str, str],
) -> Response:
    """The form again, with what was chosen and each problem next to its field."""
    return site.render(
        request,
        "grant.html",
        {
            "p": partner,
            "chosen": choice.categories,
            "expires": choice.expires,
            "errors": errors,
            "expiry": expiry_range(datetime.now(UTC)),
        },
        session=session,
        status=400,
    )


def _words(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
