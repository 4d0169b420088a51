"""GraphiQL, in development only (`make serve`: the development issuer is on).

`GET /graphql` with `Accept: text/html` serves Strawberry's GraphiQL page with a demo token
helper: the page is signed in as one of the demo people (`?as=bob`) with a token from the
development issuer, in the headers editor where it can be read and changed. Outside
development the page does not exist (`GET /graphql` stays 405). Strawberry's page loads
GraphiQL, React and their styles from unpkg.com, so its Content-Security-Policy allows that
host; nothing else is fetched from outside.
"""

from __future__ import annotations

import html

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse
from strawberry.http.ides import get_graphql_ide_html

from stores.seed import DEMO_HANDLES

TOKEN_TTL = 3600
CDN = "https://unpkg.com"
POLICY = (
    "default-src 'none'; "
    f"script-src 'unsafe-inline' {CDN}; "
    f"style-src 'unsafe-inline' {CDN}; "
    "img-src data:; font-src data:; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_BANNER_STYLE = """
      .dsar-demo { font: 14px/1.4 system-ui, sans-serif; padding: 6px 12px;
        background: #fff3cd; color: #3d2c00; border-bottom: 1px solid #e0c36c; }
      .dsar-demo a { color: #3d2c00; margin-left: 0.5em; }
      #graphiql { height: calc(100vh - 32px) !important; }
    </style>"""


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == "text/html" for part in accept.split(","))


def graphiql_page(request: Request) -> HTMLResponse | None:
    """The page, or None outside development."""
    dev = request.app.state.security.dev
    if not request.app.state.settings.dev_issuer or dev is None:
        return None
    person = request.query_params.get("as", DEMO_HANDLES[0])
    if person not in DEMO_HANDLES:
        person = DEMO_HANDLES[0]
    token = dev.mint("customer", person, ttl=TOKEN_TTL)
    headers = orjson.dumps({"Authorization": f"Bearer {token}"}, option=orjson.OPT_INDENT_2)
    others = " ".join(
        f'<a href="?as={h}">{html.escape(h)}</a>' for h in DEMO_HANDLES if h != person
    )
    banner = (
        '<div class="dsar-demo" role="note"><strong>Development only.</strong> '
        f"Asking as <strong>{html.escape(person)}</strong> with a demo token from the "
        f"development issuer (valid {TOKEN_TTL // 60} minutes; it is in the headers editor "
        f"below). Ask as:{others}</div>"
    )
    page = get_graphql_ide_html("graphiql")
    page = page.replace("<title>Strawberry GraphiQL</title>", "<title>dsar GraphiQL</title>")
    page = page.replace("    </style>", _BANNER_STYLE, 1)
    page = page.replace("<body>", "<body>\n    " + banner, 1)
    # The demo token goes into the headers editor unless the URL carries headers already.
    page = page.replace(
        "React.useState(parameters.headers)",
        f"React.useState(parameters.headers || {orjson.dumps(headers.decode()).decode()})",
        1,
    )
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": POLICY,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept",
        },
    )
