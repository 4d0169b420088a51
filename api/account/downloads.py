"""Asking for a copy, its page with a progress bar, and the download itself.

When the sign-in is too weak or too old (RFC 9470: Settings.step_up_acr_values and
step_up_max_age), the person is sent through a fresh sign-in and brought back to finish: an
export asked for waits in the session and is made when they return; a download resumes on its
page.
"""

from __future__ import annotations

import time
from urllib.parse import quote
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.account import _exports
from api.account.sessions import Session
from api.account.site import AccountSite
from api.account.web import first
from domain import audit
from domain.errors import LimitReached, Refused, StepUpRequired
from domain.principals import Customer
from exporters import EXPORTERS, PURPOSES

EXPIRED = (
    "This download can no longer be used",
    "A link serves a few whole downloads, for a limited time. You can ask for a new one on your "
    "data page.",
)
UNKNOWN = (
    "This download link is not valid",
    "It may be mistyped, or it may belong to another account. You can ask for a new copy on "
    "your data page.",
)


# A step-up this recent that was still not enough will not become enough by asking again.
RETRY_AFTER_SIGN_IN = 60.0


def step_up(
    site: AccountSite,
    request: Request,
    session: Session,
    next_path: str,
    *,
    what: str = "Downloading your data",
) -> Response:
    """Off to a fresh, strong sign-in and back to `next_path`; no loop if the provider cannot."""
    if just_signed_in(session):
        return site.message(
            request,
            401,
            "We could not confirm it is you",
            f"{what} needs a sign-in with your second step (for example a code or a security "
            "key). Please sign out, sign in that way and try again.",
            session=session,
        )
    target = "/account/login?step_up=1&next=" + quote(next_path, safe="")
    return site.redirect(target, session, request)


def just_signed_in(session: Session) -> bool:
    at = session.data.stepped_up_at
    return at is not None and time.time() - at < RETRY_AFTER_SIGN_IN


def routes(site: AccountSite) -> list[Route]:
    async def ask(request: Request) -> Response:
        checked = await site.posted_by_person(request, keep=("export", "format", "purpose"))
        if isinstance(checked, Response):
            return checked
        session, fields, principal = checked
        choice = {"format": first(fields, "format"), "purpose": first(fields, "purpose")}
        if choice["format"] not in EXPORTERS or choice["purpose"] not in PURPOSES:
            return site.message(
                request,
                400,
                "Please choose a format and a purpose",
                "Go back and pick one of each.",
                session=session,
            )
        return await make(site, request, session, principal, choice)

    async def page(request: Request) -> Response:
        session = await site.session(request)
        export_id = _uuid(request.path_params["id"])
        principal = await site.principal(request, session)
        if principal is None:
            return await sign_in_first(site, request, session, export_id)
        view = (
            None
            if export_id is None
            else await _exports.one(site.services(request), principal, export_id)
        )
        if view is None:
            return site.message(request, 404, *UNKNOWN, session=session)
        if view.status == "expired":
            return site.message(request, 410, *EXPIRED, session=session)
        estimate = await _estimate(site, request, principal, view)
        stepped = request.query_params.get("start") == "1"
        return site.render(
            request,
            "export.html",
            {
                "e": view,
                "estimate": estimate,
                "filename": view.filename,
                "autostart": stepped,
                "in_page": in_page(estimate),
                "notice": "Your copy is ready. It downloads now; if it does not, use the button."
                if stepped
                else None,
            },
            session=session,
        )

    async def download(request: Request) -> Response:
        session = await site.session(request)
        export_id = _uuid(request.path_params["id"])
        principal = await site.principal(request, session)
        if principal is None:
            return await sign_in_first(site, request, session, export_id)
        if export_id is None:
            return site.message(request, 404, *UNKNOWN, session=session)
        response = await _exports.download(
            site.services(request), principal, export_id, request.state.request_id
        )
        if response.status_code == 200:
            return response
        if _exports.needs_step_up(response):
            assert session is not None
            return step_up(site, request, session, f"/account/exports/{export_id}?start=1")
        if response.status_code == 410:
            return site.message(request, 410, *EXPIRED, session=session)
        if response.status_code == 503:
            return site.message(
                request,
                503,
                "Your download cannot start right now",
                "Please try again in a few minutes.",
                session=session,
                headers={"Retry-After": response.headers.get("retry-after", "30")},
            )
        if response.status_code == 409:
            return site.message(
                request,
                409,
                "This copy is downloading right now",
                "Wait until that download finishes, then try again.",
                session=session,
                headers={"Retry-After": response.headers.get("retry-after", "30")},
            )
        return site.message(request, 404, *UNKNOWN, session=session)

    return [
        Route("/exports", ask, methods=["POST"], name="account_export_request"),
        Route("/exports/{id}", page, name="account_export"),
        Route("/exports/{id}/download", download, name="account_export_download"),
    ]


async def sign_in_first(
    site: AccountSite, request: Request, session: Session | None, export_id: UUID | None
) -> Response:
    """A download link opened by someone not signed in: a link that can no longer serve says so
    at once (signing in would not help); a live one asks to sign in and comes back to it."""
    if export_id is None or not await _exports.still_serves(site.services(request), export_id):
        return site.message(request, 410, *NO_LONGER, session=session)
    return site.redirect(f"/account/login?next={quote(request.url.path)}", None, request)


NO_LONGER = (
    "This download link is no longer valid",
    "A link serves a few whole downloads, for a limited time, and this one can serve no more "
    "(or it was mistyped). Sign in to your data page to ask for a new copy.",
)


async def make(
    site: AccountSite,
    request: Request,
    session: Session,
    principal: Customer,
    choice: dict[str, str | None],
) -> Response:
    """Asks for the export; on a step-up, keeps the choice in the session for after sign-in."""
    services = site.services(request)
    try:
        view = await _exports.request(
            services,
            principal,
            request.state.request_id,
            format=str(choice["format"]),
            purpose=str(choice["purpose"]),
        )
    except StepUpRequired:
        if not just_signed_in(session):
            session.data.pending_export = dict(choice)
            session.data.pending_grant = None  # the latest thing asked for is what is finished
            await site.sessions(request).save(session)
        return step_up(site, request, session, "/account")
    except LimitReached as exc:
        hours = max(1, round(exc.retry_after / 3600))
        ready = sum(1 for e in await _exports.mine(services, principal) if e.available)
        earlier = (
            "none of your earlier copies can still be downloaded."
            if not ready
            else f"{ready} of your earlier copies can still be downloaded from your data page."
            if ready > 1
            else "one of your earlier copies can still be downloaded from your data page."
        )
        return site.message(
            request,
            429,
            "You have asked for as many copies as we make in a day",
            f"To keep your data safe we make {_copies(services.rules.exports_per_day)} a day at "
            f"most. You can ask again in about {hours} {'hour' if hours == 1 else 'hours'}; "
            + earlier,
            session=session,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except audit.AuditUnavailable:
        # Fail closed, as the API does: no export without its audit row.
        return site.message(
            request,
            503,
            "We could not prepare this copy right now",
            "Please try again in a few minutes.",
            session=session,
            headers={"Retry-After": "30"},
        )
    except Refused as exc:
        return site.message(
            request, 400, "We could not prepare this copy", str(exc), session=session
        )
    return site.redirect(f"/account/exports/{view.id}?start=1", session, request)


def _copies(n: int) -> str:
    return "one copy" if n == 1 else f"{n} copies"


async def _estimate(
    site: AccountSite, request: Request, principal: Customer, view: _exports.ExportView
) -> int:
    if view.records is not None:
        return view.records
    services = site.services(request)
    if principal.subject_id is None:
        return 0
    counts = (await services.stores.counts([principal.subject_id]))[principal.subject_id]
    purpose = PURPOSES[view.purpose]
    return sum(n for key, n in counts.items() if purpose.includes(services.catalogue.category(key)))


# The page's progress bar reads the ZIP into the browser's memory before saving it; past about
# this many records (some 70 MB as CSV) the browser's own download, straight to disk, is used.
IN_PAGE_RECORDS = 200_000


def in_page(estimated_records: int) -> bool:
    return estimated_records <= IN_PAGE_RECORDS


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
