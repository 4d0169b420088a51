"""GraphiQL, in development only (`make serve`: the development issuer is on).

`GET /graphql` with `Accept: text/html` serves Strawberry's GraphiQL page with a demo token
helper: the page is signed in as one of the demo people (`?as=bob`) with a token from the
development issuer, in the headers editor where it can be read and changed. Outside
development the page does not exist (`GET /graphql` stays 405).

Strawberry's page loads GraphiQL, React and their styles from unpkg.com, pinned by SRI hashes.
Here they come from `api/graphiql_assets/` instead (`/graphql/assets/…`): the same files, byte
for byte (the page keeps Strawberry's integrity attributes, which the browser checks), so the
page fetches nothing from outside and works with no network.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route
from strawberry.http.ides import get_graphql_ide_html

from api.settings import Settings
from stores.seed import DEMO_HANDLES

TOKEN_TTL = 3600
ASSETS = Path(__file__).resolve().parent / "graphiql_assets"
PREFIX = "/graphql/assets/"
# Each file of Strawberry's page on unpkg.com, and the local copy served in its place.
LOCAL = {
    "https://unpkg.com/react@18.2.0/umd/react.production.min.js": "react.production.min.js",
    "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js": (
        "react-dom.production.min.js"
    ),
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.css": "graphiql.min.css",
    "https://unpkg.com/graphiql@3.8.3/graphiql.min.js": "graphiql.min.js",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/style.css": "plugin-explorer.css",
    "https://unpkg.com/@graphiql/plugin-explorer@1.0.2/dist/index.umd.js": (
        "plugin-explorer.umd.js"
    ),
}
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# js-cookie only reads a Django CSRF cookie, which dsar never sets.
_COOKIE_SCRIPT = re.compile(r"\s*<script[^>]*js-cookie[^>]*></script>", re.DOTALL)
POLICY = (
    "default-src 'none'; "
    "script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
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
    for remote, local in LOCAL.items():
        page = page.replace(f'"{remote}"', f'"{PREFIX}{local}"')
    page = _COOKIE_SCRIPT.sub("", page).replace('Cookies.get("csrftoken")', "null")
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


async def graphiql_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in LOCAL.values():
        return Response(status_code=404)
    return FileResponse(
        ASSETS / name,
        media_type=MEDIA[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def graphiql_routes(settings: Settings) -> list[Route]:
    """The page's files, in development only (the page itself is `GET /graphql`)."""
    if not settings.dev_issuer:
        return []
    return [Route(PREFIX + "{name}", graphiql_asset)]
