"""`/privacy`: privacy staff's queue of requests, server-rendered in the account page's style.

The queue lists every request by the date it is due, earliest first, so the overdue come
first; a request's page shows its dates, verification and timeline, with the staff's acts
(extend, refuse, verify, approve) as forms. Each form is a domain call of `domain.casework`,
the same as the GraphQL mutations. Staff sign in with a token of scope `privacy:manage` held in
a server-side session: under `make serve` through the demo sign-in (`/privacy/demo`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.account.sessions import Session, SessionData
from api.account.site import AccountSite
from api.account.web import first
from api.authn import authenticate
from api.graphql_http import AUTH_ERRORS
from domain import casework
from domain.audit import AuditUnavailable
from domain.errors import Forbidden, NotFound
from domain.notices import BASIS_TEXT, RefusalBasis
from domain.principals import SCOPE_STAFF, PrivacyStaff
from domain.requests import Status

DEMO_STAFF = "privacy-1"
DEMO_TTL = 3600
METHODS = {
    "email_confirmed": "E-mail address confirmed",
    "id_document": "Identity document seen (record no number)",
    "account_login": "Signed in to their account",
}
STEPS = {
    "request.receive": "Received",
    "request.acknowledge": "Receipt confirmed",
    "request.verify": "Verified",
    "request.extend": "Extended",
    "request.hold": "Held for review",
    "request.approve": "Approved",
    "request.refuse": "Refused",
    "request.complete": "Completed",
    "request.withdraw": "Withdrawn",
    "export.request": "Copy opened",
    "export.download": "Download started",
    "export.sent": "Copy sent",
    "transfer.start": "Transfer opened",
    "transfer.download": "Transfer started",
    "transfer.sent": "Transfer sent",
}
TOLD = "the person has been e-mailed the reason."
NOT_TOLD = (
    "no e-mail could be sent (no address on record for this person, or the mail server did "
    "not take it): tell them another way."
)
_UNAVAILABLE = ("Please try again in a few minutes", "The act could not be recorded.")


def routes(site: AccountSite) -> list[Route]:
    async def staff_of(request: Request, session: Session | None) -> PrivacyStaff | None:
        validator = request.app.state.security.validator
        if session is None or session.data.access_token is None or validator is None:
            return None
        try:
            principal = await authenticate(
                "Bearer " + session.data.access_token,
                validator,
                site.services(request).stores.subject_for_login,
            )
            await request.app.state.security.roles.check(principal)
        except AUTH_ERRORS:
            return None
        if not isinstance(principal, PrivacyStaff) or SCOPE_STAFF not in principal.scopes:
            return None
        return principal

    def render(request: Request, name: str, values: dict[str, Any], **kw: Any) -> Response:
        return site.render(request, name, {"staff_area": True, **values}, **kw)

    async def signed_in(request: Request) -> tuple[Session, PrivacyStaff] | Response:
        session = await site.session(request)
        who = await staff_of(request, session)
        if session is None or who is None:
            return render(request, "privacy_signin.html", {"demo": site.demo}, status=401)
        return session, who

    async def queue(request: Request) -> Response:
        checked = await signed_in(request)
        if isinstance(checked, Response):
            return checked
        session, who = checked
        overdue = request.query_params.get("overdue") == "1"
        page = await casework.queue(
            site.services(request), who, overdue=True if overdue else None, first=100
        )
        now = datetime.now(UTC)
        return render(
            request,
            "privacy.html",
            {"cases": page.cases, "now": now, "more": page.has_next, "overdue_only": overdue},
            session=session,
        )

    async def one(request: Request) -> Response:
        checked = await signed_in(request)
        if isinstance(checked, Response):
            return checked
        session, who = checked
        return await _detail(request, session, who, request.path_params["id"])

    async def _detail(
        request: Request,
        session: Session,
        who: PrivacyStaff,
        raw_id: str,
        notice: str | None = None,
        status: int = 200,
    ) -> Response:
        try:
            case = await casework.one(site.services(request), who, UUID(raw_id))
        except (ValueError, NotFound):
            return site.message(
                request, 404, "No such request", "There is no request by that reference."
            )
        return render(
            request,
            "privacy_request.html",
            {
                "case": case,
                "now": datetime.now(UTC),
                "steps": STEPS,
                "methods": METHODS,
                "bases": [(b.value, BASIS_TEXT[b]) for b in RefusalBasis],
                "in_review": case.row.status == Status.IN_REVIEW,
                "notice": notice,
            },
            session=session,
            status=status,
        )

    async def act(request: Request) -> Response:
        checked = await site.posted(request, "Please reload the request's page and try again.")
        if isinstance(checked, Response):
            return checked
        session, fields = checked
        who = await staff_of(request, session)
        if who is None:
            return render(request, "privacy_signin.html", {"demo": site.demo}, status=401)
        raw_id = request.path_params["id"]
        services = site.services(request)
        rid = request.state.request_id
        what = first(fields, "act")
        try:
            req_id = UUID(raw_id)
            if what == "extend":
                reason = first(fields, "reason") or ""
                case = await casework.extend(services, who, req_id, reason, rid)
                done = "Extended; " + (TOLD if case.told else NOT_TOLD)
            elif what == "refuse":
                basis = RefusalBasis(first(fields, "basis") or "")
                reason = first(fields, "reason") or ""
                case = await casework.refuse(services, who, req_id, reason, basis, rid)
                done = "Refused; " + (TOLD if case.told else NOT_TOLD)
            elif what == "verify":
                method = first(fields, "method") or ""
                if method not in METHODS:
                    raise casework.CaseRefused("Choose how you verified the person.")
                note = first(fields, "note")
                case = await casework.verify(services, who, req_id, method, note, rid)
                done = "Verification recorded."
                if case.told is not None:
                    done += " A copy was opened for the person to download; " + (
                        "they have been e-mailed where to find it." if case.told else NOT_TOLD
                    )
            elif what == "approve":
                await casework.approve(services, who, req_id, rid)
                done = "Approved."
            else:
                raise casework.CaseRefused("Choose an act.")
        except ValueError:
            return site.message(request, 400, "Please choose from the form", "Go back and retry.")
        except NotFound:
            return site.message(
                request, 404, "No such request", "There is no request by that reference."
            )
        except casework.CaseRefused as exc:
            return await _detail(request, session, who, raw_id, exc.message, status=400)
        except (AuditUnavailable, Forbidden):
            return site.message(request, 503, *_UNAVAILABLE, headers={"Retry-After": "5"})
        return await _detail(request, session, who, raw_id, done)

    async def demo_page(request: Request) -> Response:
        if not site.demo:
            return site.message(request, 404, "Page not found", "There is no page at this address.")
        session = await site.session(request) or await site.sessions(request).start()
        return render(request, "privacy_demo.html", {"staff": DEMO_STAFF}, session=session)

    async def demo_sign_in(request: Request) -> Response:
        dev = request.app.state.security.dev
        if not site.demo or dev is None:
            return site.message(request, 404, "Page not found", "There is no page at this address.")
        checked = await site.posted(request, "Please reload the demo sign-in and try again.")
        if isinstance(checked, Response):
            return checked
        previous, _ = checked
        token = dev.mint("staff", DEMO_STAFF, ttl=DEMO_TTL)
        data = SessionData(access_token=token, sub=DEMO_STAFF)
        session = await site.sessions(request).sign_in(previous, data, time.time() + DEMO_TTL)
        return site.redirect("/privacy", session, request)

    return [
        Route("/privacy", queue, name="privacy_queue"),
        Route("/privacy/demo", demo_page, name="privacy_demo"),
        Route("/privacy/demo", demo_sign_in, methods=["POST"], name="privacy_demo_sign_in"),
        Route("/privacy/requests/{id}", one, name="privacy_request"),
        Route("/privacy/requests/{id}", act, methods=["POST"], name="privacy_act"),
    ]
