"""Pages for people without an account: `/requests/new` (ask for your data, yourself or as an
authorized agent) and `/requests/verify` (the link the e-mail carries). Both say the same
whatever the address; a link is followed only by pressing the page's button (POST), so a mail
scanner that opens links does not spend it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.account.site import AccountSite
from api.account.web import first, form
from domain import intake
from domain.audit import AuditUnavailable
from domain.errors import Gone
from schema.outcomes import SUBMITTED

_GONE = (
    "This link can no longer be used",
    "A link works once and for 24 hours. If you still want your data, ask again at /requests/new.",
)
_UNAVAILABLE = ("Please try again in a few minutes", "We could not record this just now.")


def routes(site: AccountSite) -> list[Route]:
    def page(
        request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> Response:
        catalogue = site.services(request).catalogue
        jurisdictions = [j for j in catalogue.jurisdictions if j.key != "UNKNOWN"]
        return site.render(
            request,
            "request_new.html",
            {
                "values": values,
                "errors": errors,
                "jurisdictions": jurisdictions,
                "agents": catalogue.authorized_agents,
            },
            status=status,
        )

    async def new(request: Request) -> Response:
        # `?kind=portability`: the right a person came from (the account page links each one).
        kind = "portability" if request.query_params.get("kind") == "portability" else "access"
        return page(request, {"kind": kind, "jurisdiction": ""}, {})

    async def submit(request: Request) -> Response:
        fields = await form(request) or {}
        values = {
            name: (first(fields, name) or "").strip()
            for name in ("email", "kind", "jurisdiction", "agent", "agent_name", "agent_email")
        }
        errors: dict[str, str] = {}
        agent = None
        if values["agent"] == "yes":
            try:
                agent = intake.checked_agent(values["agent_name"], values["agent_email"])
            except intake.InvalidSubmission as exc:
                errors["agent_email" if "address" in exc.message else "agent_name"] = exc.message
        if not errors:
            try:
                await intake.submit(
                    site.services(request),
                    email=values["email"],
                    kind=values["kind"],
                    jurisdiction=values["jurisdiction"] or None,
                    agent=agent,
                    request_id=request.state.request_id,
                )
            except intake.InvalidSubmission as exc:
                field = "email" if "address" in exc.message else "kind"
                if "urisdiction" in exc.message:
                    field = "jurisdiction"
                errors[field] = exc.message
            except AuditUnavailable:
                return site.message(request, 503, *_UNAVAILABLE, headers={"Retry-After": "5"})
        if errors:
            return page(request, values, errors, status=400)
        return site.render(request, "request_sent.html", {"text": SUBMITTED})

    async def verify(request: Request) -> Response:
        token = request.query_params.get("token", "")
        try:
            req = await intake.pending(site.services(request), token)
        except Gone:
            return site.message(request, 410, *_GONE)
        return site.render(
            request, "request_verify.html", {"token": token, "agent": req.channel == "agent"}
        )

    async def confirm(request: Request) -> Response:
        fields = await form(request) or {}
        token = first(fields, "token") or ""
        try:
            done = await intake.confirm(site.services(request), token, request.state.request_id)
        except Gone:
            return site.message(request, 410, *_GONE)
        except AuditUnavailable:
            return site.message(request, 503, *_UNAVAILABLE, headers={"Retry-After": "5"})
        return site.render(request, "request_confirmed.html", {"done": done})

    return [
        Route("/requests/new", new, name="requests_new"),
        Route("/requests/new", submit, methods=["POST"], name="requests_submit"),
        Route("/requests/verify", verify, name="requests_verify"),
        Route("/requests/verify", confirm, methods=["POST"], name="requests_confirm"),
    ]
