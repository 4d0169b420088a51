"""The customer's account page, `/account`: their data in plain words, and a copy to download.

A backend-for-frontend: the server signs the person in (authorization code + PKCE), keeps the
tokens in a server-side session and reads their data in-process with the session's principal;
the browser gets HTML, one HttpOnly session cookie and nothing else.

Adding a section (as the partner section did) is one template included by `account.html` and
one module of routes listed below.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from api.account import demomail, downloads, login, pages, partners, privacy, public
from api.account.site import AccountSite, PageErrors
from api.account.web import HERE, PageHeaders, Static, content_security_policy, origin
from api.settings import Settings

__all__ = ["account_routes"]


def account_routes(settings: Settings) -> list[BaseRoute]:
    site = AccountSite(settings)
    provider = [origin(site.provider.issuer)] if site.provider is not None else []
    headers = [
        Middleware(PageHeaders, csp=content_security_policy(provider)),
        Middleware(PageErrors, site=site),
    ]
    routes: list[BaseRoute] = [
        *pages.routes(site),
        *downloads.routes(site),
        *partners.routes(site),
        *login.routes(site),
        *demomail.routes(site),
        Mount("/static", app=Static(directory=HERE / "static"), name="account_static"),
    ]
    home = next(r for r in routes if isinstance(r, Route) and r.name == "account_home")
    return [
        *(
            Route(r.path, r.endpoint, methods=r.methods, name=r.name, middleware=headers)
            for r in (*public.routes(site), *privacy.routes(site))
        ),
        Route("/account", home.endpoint, middleware=headers),
        Mount("/account", routes=routes, middleware=headers),
    ]
