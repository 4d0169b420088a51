"""The data page, a page per category (large ones paged), and the person's own recordings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from api.account import _exports, _partners, data
from api.account._grant_form import Choice, expiry_range
from api.account.sessions import session_id
from api.account.site import AccountSite
from api.account.web import TIMES_COOKIE, first, safe_next, when
from catalogue import Category
from domain import portability
from domain.audit import access_log
from exporters import EXPORTERS, PURPOSES

# How many earlier pages a "Previous page" link can lead back through; past that, the first
# page is one link away. The API's connections page forwards only, so the way back is carried
# in the link itself, as the cursors the API gave (each about 90 characters).
TRAIL = 20
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
# The audit log's actions (domain.audit.Action), as the person reads them.
ACTIONS = {
    "subject.read": "Looked at your data",
    "subject.find": "Searched for you",
    "field.unmask": "Saw a value in full",
    "grant.create": "Was given access",
    "grant.revoke": "Had access taken away",
    "transfer.start": "Asked for a transfer",
    "transfer.download": "Began receiving a transfer",
    "transfer.sent": "Was sent a transfer",
    "export.request": "Asked for a copy",
    "export.download": "Began downloading a copy",
    "export.sent": "Was sent a copy",
    "access.denied": "Was refused",
}
# How to use each right from this page, beyond writing to the controller's address (which every
# right offers when the catalogue has one): the page's own sections, and the request form.
RIGHT_WAYS: dict[str, tuple[tuple[str, str], ...]] = {
    "access": (
        ("#download", "Download a copy on this page"),
        ("/requests/new?kind=access", "Ask with our request form (also for someone you act for)"),
    ),
    "portability": (
        ("#download", "Download a machine-readable copy on this page"),
        ("#partners", "Send your data to another company"),
        ("/requests/new?kind=portability", "Ask with our request form"),
    ),
}
UNAVAILABLE = (
    "Your data cannot be shown right now",
    "One of our systems did not answer. Please try again in a few minutes.",
)


def routes(site: AccountSite) -> list[Route]:
    async def home(request: Request) -> Response:
        session = await site.session(request)
        principal = await site.principal(request, session)
        if principal is None:
            if session is not None and session.signed_in:
                await site.sessions(request).delete(session)
                return site.signed_out(request, ended(site))
            if session is None and session_id(request) is not None:
                return site.signed_out(request, ended(site))
            return site.render(request, "signin.html", {"notice": None})
        services = site.services(request)
        try:
            overview = await data.overview(
                services, request.app.state.schema, principal, request.state.request_id
            )
        except data.DataUnavailable:
            return site.message(
                request, 503, *UNAVAILABLE, session=session, headers={"Retry-After": "30"}
            )
        if overview is None:
            return site.render(request, "nodata.html", session=session)
        exports = await _exports.mine(services, principal)
        purposes = []
        for key, purpose in PURPOSES.items():
            included = [c for c in services.catalogue if purpose.includes(c)]
            last = next((e for e in exports if e.purpose == key and e.bytes is not None), None)
            purposes.append(
                {
                    "key": key,
                    "title": _exports.PURPOSE_TEXT[key],
                    "description": purpose.description,
                    "records": sum(overview.counts.get(c.key, 0) for c in included),
                    "categories": sum(1 for c in included if overview.counts.get(c.key)),
                    "last_size": last.size if last else None,
                }
            )
        assert principal.subject_id is not None
        looked = await access_log(services.db, principal.subject_id, limit=50)
        partner_names = await portability.partner_names(
            services.db, sorted({a.client_id for a in looked if a.client_id})
        )
        try:
            partners = await _partners.section(
                services, request.app.state.schema, principal, request.state.request_id
            )
        except data.DataUnavailable:
            return site.message(
                request, 503, *UNAVAILABLE, session=session, headers={"Retry-After": "30"}
            )
        partner_notice = session.data.partner_notice if session is not None else None
        draft = session.data.draft if session is not None else None
        if session is not None and (partner_notice is not None or draft is not None):
            session.data.partner_notice = None  # shown once
            session.data.draft = None
            await site.sessions(request).save(session)
        kept = _draft(draft)
        return site.render(
            request,
            "account.html",
            {
                "overview": overview,
                "exports": exports,
                "purposes": purposes,
                "looked": looked,
                "partner_names": partner_names,
                "actions": ACTIONS,
                "titles": {c.key: c.title for c in services.catalogue},
                "rule": services.catalogue.withholding,
                "generated_at": when(datetime.fromisoformat(overview.right_to_know["generatedAt"])),
                "notice": KEPT if kept else None,
                "notice_kind": "",
                "draft_export": kept.get("export"),
                "draft_grant": kept.get("grant"),
                "partners": partners.partners,
                "grants": partners.grants,
                "expiry": expiry_range(datetime.now(UTC)),
                "partner_notice": partner_notice,
                "right_ways": RIGHT_WAYS,
            },
            session=session,
        )

    async def category(request: Request) -> Response:
        session = await site.session(request)
        principal = await site.principal(request, session)
        if principal is None:
            return site.redirect("/account", None, request)
        cat = _category(site, request, request.path_params["key"])
        trail = _trail(request)
        after = request.query_params.get("after")
        if cat is None or trail is None or (after is not None and not _CURSOR.match(after)):
            return site.message(
                request, 404, "Page not found", "There is no page at this address.", session=session
            )
        try:
            page = await data.category_page(
                site.services(request),
                request.app.state.schema,
                principal,
                request.state.request_id,
                cat,
                after,
            )
        except data.BadPage:
            return site.message(
                request,
                400,
                "This page link is not valid",
                "Start again from the first page of this category.",
                session=session,
            )
        except data.DataUnavailable:
            return site.message(
                request, 503, *UNAVAILABLE, session=session, headers={"Retry-After": "30"}
            )
        if page is None:
            return site.render(request, "nodata.html", session=session)
        number = _page_number(request) if after is not None else 1
        previous_url = next_url = None
        if cat.paged and after is not None and trail:
            previous_url = _link(cat, trail[-1] or None, trail[:-1], number - 1)
        if cat.paged and page.has_next and page.end_cursor:
            next_url = _link(cat, page.end_cursor, [*trail, after or ""][-TRAIL:], number + 1)
        return site.render(
            request,
            "category.html",
            {
                "cd": page,
                "page": number if cat.paged else None,
                "first_row": (number - 1) * data.PAGE_ROWS + 1 if cat.paged else None,
                "previous_url": previous_url,
                "next_url": next_url,
            },
            session=session,
        )

    async def recording(request: Request) -> Response:
        session = await site.session(request)
        principal = await site.principal(request, session)
        if principal is None:
            return site.redirect("/account", None, request)
        stores = site.services(request).stores
        found = None
        if principal.subject_id is not None:
            found = await stores.recording(
                "recordings", principal.subject_id, request.path_params["name"]
            )
        if found is None:
            return site.message(
                request,
                404,
                "Recording not found",
                "There is no such recording in your data.",
                session=session,
            )
        return StreamingResponse(
            stores.files("recordings").read(found["_path"]),
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{found["file_name"]}"',
                "Content-Length": str(found["bytes"]),
            },
        )

    async def times(request: Request) -> Response:
        """Times in UTC, or in the person's own zone again: a display choice kept in a cookie."""
        target = safe_next(request.query_params.get("next")) or "/account"
        response = RedirectResponse(target, status_code=303)
        if request.query_params.get("in") == "utc":
            response.set_cookie(
                TIMES_COOKIE,
                "utc",
                max_age=365 * 24 * 3600,
                path="/account",
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="lax",
            )
        else:
            response.delete_cookie(TIMES_COOKIE, path="/account")
        return response

    return [
        Route("/", home, name="account_home"),
        Route("/times", times, name="account_times"),
        Route("/data/{key}", category, name="account_category"),
        Route("/recordings/{name}", recording, name="account_recording"),
    ]


KEPT = (
    "Your session had ended, so nothing was done yet. We kept your choices: check them below "
    "and send the form again."
)


def ended(site: AccountSite) -> str:
    minutes = max(1, site.settings.account_session_ttl // 60)
    return (
        f"Your session has ended: to keep your data safe we sign you out after {minutes} "
        "minutes without activity, or 12 hours after you signed in. Please sign in again."
    )


def _draft(draft: dict[str, Any] | None) -> dict[str, Any]:
    """The choices of a form sent after the session ended, checked as the form checks them."""
    if not draft or not isinstance(draft.get("fields"), dict):
        return {}
    fields: dict[str, list[str]] = draft["fields"]
    if draft.get("form") == "export":
        fmt, purpose = first(fields, "format"), first(fields, "purpose")
        if fmt in EXPORTERS and purpose in PURPOSES:
            return {"export": {"format": fmt, "purpose": purpose}}
    if draft.get("form") == "grant":
        choice = Choice.of(fields)
        if choice.partner:
            return {"grant": choice}
    return {}


def _category(site: AccountSite, request: Request, key: str) -> Category | None:
    try:
        return site.services(request).catalogue.category(key)
    except KeyError:
        return None


def _trail(request: Request) -> list[str] | None:
    """The `after` of each earlier page, oldest first; "" stands for the first page."""
    raw = request.query_params.get("back")
    if raw is None:
        return []
    parts = raw.split(".")
    if len(parts) > TRAIL or any(p and not _CURSOR.match(p) for p in parts):
        return None
    return parts


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 10**9 else 1


def _link(cat: Category, after: str | None, back: list[str], number: int) -> str:
    params: dict[str, str] = {}
    if after:
        params["after"] = after
        if back:
            params["back"] = ".".join(back)
        params["page"] = str(number)
    query = urlencode(params)
    return f"/account/data/{cat.key}" + (f"?{query}" if query else "")
