"""`/account/demo/mail` under `make serve` only: the messages dsar would have e-mailed, for a
demo without an SMTP server. They name people of the demo company, so the page exists only
while the development issuer is on, and only while no `DSAR_SMTP_URL` sends them for real."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.account.site import AccountSite
from domain.notices import LogMailer


def routes(site: AccountSite) -> list[Route]:
    if not site.demo:
        return []

    async def mail(request: Request) -> Response:
        mailer = site.services(request).mailer
        sent = list(reversed(mailer.sent)) if isinstance(mailer, LogMailer) else None
        return site.render(request, "demo_mail.html", {"sent": sent})

    return [Route("/demo/mail", mail, name="account_demo_mail")]
