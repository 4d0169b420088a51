"""What every account-page response shares: templates, security headers, forms, CSRF, errors."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.account.sessions import Session

HERE = Path(__file__).resolve().parent
MAX_FORM = 8 * 1024
_NEXT = re.compile(r"^/account(/[A-Za-z0-9/_\-]*)?(\?[A-Za-z0-9=&_\-]*)?$")


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["when"] = when
    env.globals["zone_name"] = zone_name
    env.filters["plain"] = lambda text: split_law(text)[0]
    env.filters["law"] = lambda text: split_law(text)[1]
    return Jinja2Templates(env=env)


# The time zone a person reads times in: their browser's, which account.js keeps in the cookie
# ZONE_COOKIE, unless they asked for UTC (TIMES_COOKIE = "utc"). Set for each request by
# PageHeaders, read by `when` wherever a time is put into words.
ZONE_COOKIE = "dsar_zone"
TIMES_COOKIE = "dsar_times"
_ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
zone: ContextVar[tzinfo] = ContextVar("zone", default=UTC)


def zone_of(cookies: Mapping[str, str]) -> tzinfo:
    if cookies.get(TIMES_COOKIE) == "utc":
        return UTC
    name = cookies.get(ZONE_COOKIE, "")
    if len(name) > 64 or not _ZONE_NAME.match(name):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name() -> str:
    """ "UTC", or the zone's name as the browser gave it (Europe/Berlin)."""
    current = zone.get()
    return current.key if isinstance(current, ZoneInfo) else "UTC"


def when(at: datetime, *, seconds: bool = False) -> str:
    """A time in the person's zone, with the zone's abbreviation (CET, PST, UTC)."""
    current = zone.get()
    local = at.astimezone(current)
    shown = "%-d %b %Y, %H:%M:%S" if seconds and local.second else "%-d %b %Y, %H:%M"
    return f"{local.strftime(shown)} {'UTC' if current is UTC else local.tzname()}"


# A closing parenthesis that cites the law ("… (GDPR Art. 15; CCPA right to know)."): people
# read the plain sentence, and the citation in a disclosure of its own.
_CITATION = re.compile(r"\s*\(((?:GDPR|CCPA|Cal\.)(?:[^()]|\([^()]*\))*)\)(\.?)\s*$")


def split_law(text: str) -> tuple[str, str | None]:
    """The sentence without its closing citation, and the citation (None when there is none)."""
    found = _CITATION.search(text)
    if found is None:
        return text, None
    return text[: found.start()] + found.group(2), found.group(1)


def content_security_policy(form_targets: Sequence[str]) -> str:
    """No inline script or style, nothing from elsewhere. Forms may also lead to the identity
    provider: browsers apply `form-action` to the redirects that follow a form (sign-out and
    step-up go there)."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "form-action " + " ".join(["'self'", *form_targets]),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PageHeaders:
    """Security and caching headers on every account response: pages hold personal data, so
    nothing is stored by the browser or any cache on the way (`no-store`)."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = zone.set(zone_of(Request(scope).cookies) if scope["type"] == "http" else UTC)
        try:
            await self._call(scope, receive, send)
        finally:
            zone.reset(token)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in self.headers if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Static(StaticFiles):
    """The page's CSS and JavaScript: no personal data, so a browser may keep and revalidate."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def form(request: Request) -> dict[str, list[str]] | None:
    """An `application/x-www-form-urlencoded` body of a few fields; None for anything else."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM:
        return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def first(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values and len(values) == 1 else None


def csrf_ok(request: Request, session: Session | None, fields: Mapping[str, list[str]]) -> bool:
    """OWASP synchronizer token: the form's token must equal the session's. A browser that
    sends `Origin` must also name this host (defence in depth; SameSite=Lax does the rest)."""
    sent = request.headers.get("origin")
    if sent is not None and urlsplit(sent).hostname != request.url.hostname:
        return False
    token = first(fields, "csrf")
    if session is None or token is None:
        return False
    return hmac.compare_digest(token.encode(), session.data.csrf.encode())


def safe_next(value: str | None) -> str | None:
    """Where to go after a login: only a path of this page, never another site (open redirect)."""
    if value is None or len(value) > 300 or not _NEXT.match(value):
        return None
    return value


def login_hint(value: str | None) -> str | None:
    """OpenID Connect Core 3.1.2.1 `login_hint`, passed on as given: short printable text only."""
    if value is None or not 0 < len(value) <= 200 or not value.isprintable() or not value.isascii():
        return None
    return value
