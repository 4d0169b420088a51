"""The bare endpoint of scenarios 4 and 5: Starlette + asyncpg + orjson, no GraphQL.

`POST /graphql` with a customer token answers what dsar answers to `bench._queries.me_query`
(the first page of every category) and to `events_query` (the first 100 web-analytics events),
with the same JSON (camelCase fields, signed page cursors, withheld values as `…Held` booleans).
It finds the person the way dsar does, with hand-written SQL for the demo company's keys: the
login's subject and user id in the service database, then the user's e-mail address and billing
customer id (`users`) and their cookie ids (`identifies`, leaving out a cookie id other users
signed in from too) concurrently. Each category is then read by the same mapped SELECT dsar runs
(`MappedCategory.page_sql` or `records_sql`, the person's key values as parameters), all
concurrently. It checks the token's ES256 signature, issuer, audience and expiry,
as any real API must; it skips everything else dsar does (scopes, GraphQL parsing, validation
and execution, limits, logs).

    DSAR_HOME=... DSAR_DATABASE_URL=... python -m bench.bare_app --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import mimetypes
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.settings import DEV_ISSUER, Settings
from bench._queries import FIRST_PAGE, LIST_LIMIT, camel, events_query, kind
from catalogue import Catalogue, Category, load_catalogue
from stores.mapping import Person
from stores.postgres import MappedCategory, introspect

KEY_FILE = Path("dev-issuer") / "dev-issuer-es256.jwk.json"
EVENTS = 100  # `events_query`'s page
# The demo company's keys (stores/demo.toml), as a developer who knows its schema writes them.
LOGIN = (
    "SELECT s.id, s.anchor FROM identity_links l JOIN subjects s ON s.id = l.subject_id "
    "WHERE l.issuer = $1 AND l.sub = $2"
)
USER = (
    "SELECT u.email, NOT EXISTS (SELECT 1 FROM users o WHERE o.email = u.email "
    "AND o.id <> u.id) AS own_email, u.billing_customer FROM users u WHERE u.id = $1"
)
COOKIES = (
    "SELECT DISTINCT i.anonymous_id FROM identifies i WHERE i.user_id = $1 AND NOT EXISTS "
    "(SELECT 1 FROM identifies o WHERE o.anonymous_id = i.anonymous_id AND o.user_id <> $1) "
    "ORDER BY 1"
)


def cursor(secret: bytes, category: str, position: Sequence[str]) -> str:
    payload = orjson.dumps([category, list(position)])
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


def record(cat: Category, row: asyncpg.Record) -> dict[str, Any]:
    return {
        camel(f.name + "_held" if f.withheld else f.name): (
            bool(row[f.name + "_held"]) if f.withheld else row[f.name]
        )
        for f in cat.fields
    }


def files(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        if path.is_file():
            stat = path.stat()
            out.append(
                {
                    "fileName": path.name,
                    "mediaType": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                    "bytes": stat.st_size,
                    "recordedAt": datetime.fromtimestamp(stat.st_mtime, UTC),
                    "downloadPath": f"/recordings/{path.name}",
                }
            )
    out.sort(key=lambda r: (r["recordedAt"], r["fileName"]))
    return out


class Bare:
    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.deployment = settings.locate()
        self.config = self.deployment.stores
        raw = orjson.loads((settings.home / KEY_FILE).read_bytes())
        self.key = ECKey.import_key({k: v for k, v in raw.items() if k != "d"})  # public part
        self.claims = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": DEV_ISSUER},
            aud={"essential": True, "value": settings.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        self.events_query = events_query(catalogue)
        self.service: asyncpg.Pool | None = None
        self.pools: dict[str, asyncpg.Pool] = {}
        self.mapped: dict[str, MappedCategory] = {}
        self.media = settings.home / "media"
        keys = {k.name: k.store for k in self.config.keys}
        self.app, self.analytics = keys["email"], keys["anonymous_id"]

    async def open(self) -> None:
        # The pool sizes of dsar's own: 4 for the service database, 10 a store.
        self.service = await asyncpg.create_pool(
            self.deployment.service_dsn, min_size=1, max_size=4
        )
        for sc in self.config.stores:
            if sc.kind == "files" and sc.path is not None:
                self.media = sc.path
            if sc.kind != "postgres":
                continue
            pool = await asyncpg.create_pool(sc.dsn, min_size=1, max_size=10)
            self.pools[sc.name] = pool
            mine = {k: c for k, c in self.config.categories.items() if c.store == sc.name}
            types = await introspect(pool, {c.table for c in mine.values()})
            for key, mapped in mine.items():
                self.mapped[key] = MappedCategory(self.catalogue.category(key), mapped, types)

    async def close(self) -> None:
        for pool in [*self.pools.values(), *([self.service] if self.service else [])]:
            await pool.close()

    async def person(self, issuer: str, sub: str) -> tuple[str, Person] | None:
        """The login's subject id and person, every key resolved; None if there is none."""
        assert self.service is not None
        login = await self.service.fetchrow(LOGIN, issuer, sub)
        if login is None:
            return None
        anchor = login["anchor"]
        user_id = int(anchor)
        user, cookies = await asyncio.gather(
            self.pools[self.app].fetchrow(USER, user_id),
            self.pools[self.analytics].fetch(COOKIES, user_id),
        )
        if user is None:
            return None
        values = {
            "user_id": (anchor,),
            "email": (user["email"],) if user["own_email"] else (),
            "customer": (user["billing_customer"],) if user["billing_customer"] else (),
            "anonymous_id": tuple(r["anonymous_id"] for r in cookies),
        }
        return str(login["id"]), Person(anchor, values)

    async def rows(self, key: str, person: Person, limit: int) -> list[asyncpg.Record]:
        cat = self.mapped[key]
        if not person.has_all(cat.keys):
            return []
        args: list[Any] = []
        sql = cat.page_sql(person, args, limit, None)
        return list(await self.pools[cat.mapped.store].fetch(sql, *args))

    async def category(self, cat: Category, person: Person) -> Any:
        how = kind(cat)
        if cat.key == "recordings":
            return await asyncio.to_thread(files, self.media / "users" / person.anchor)
        if how == "single":
            mapped = self.mapped[cat.key]
            if not person.has_all(mapped.keys):
                return None
            args: list[Any] = []
            sql = mapped.records_sql(person, args) + " LIMIT 1"
            row = await self.pools[mapped.mapped.store].fetchrow(sql, *args)
            return None if row is None else record(cat, row)
        if how == "list":
            return [record(cat, r) for r in await self.rows(cat.key, person, LIST_LIMIT)]
        rows = await self.rows(cat.key, person, FIRST_PAGE + 1)
        edges = [
            {
                "node": record(cat, r),
                "cursor": cursor(self.settings.secret_key, cat.key, r["_pos"]),
            }
            for r in rows[:FIRST_PAGE]
        ]
        return {
            "edges": edges,
            "pageInfo": {
                "hasNextPage": len(rows) > FIRST_PAGE,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    async def events(self, person: Person) -> dict[str, Any]:
        cat = self.catalogue.category("web_analytics")
        rows = await self.rows(cat.key, person, EVENTS)
        return {"webAnalytics": {"edges": [{"node": record(cat, r)} for r in rows]}}

    async def me(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise JoseError("no bearer token")
            claims = jwt.decode(token, self.key, algorithms=["ES256"]).claims
            self.claims.validate(claims)
        except (JoseError, ValueError):
            return Response(b'{"error":"invalid_token"}', 401, media_type="application/json")
        body = orjson.loads(await request.body())  # a real endpoint reads its body; dsar does
        found = await self.person(claims["iss"], claims["sub"])
        me: dict[str, Any] | None = None
        if found is not None:
            sid, person = found
            if body.get("query") == self.events_query:
                me = await self.events(person)
            else:
                cats = list(self.catalogue)
                values = await asyncio.gather(*(self.category(c, person) for c in cats))
                me = {"id": sid, **{camel(c.key): v for c, v in zip(cats, values, strict=True)}}
        return Response(orjson.dumps({"data": {"me": me}}), media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"alive"}', media_type="application/json")


def create_bare_app(settings: Settings) -> Starlette:
    bare = Bare(settings, load_catalogue(settings.catalogue_file))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bare.open()
        try:
            yield
        finally:
            await bare.close()

    return Starlette(
        routes=[Route("/graphql", bare.me, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    p.add_argument("--port", type=int, default=8001)
    args = p.parse_args()
    # The same server settings as `dsar serve`: uvloop, httptools, no access log.
    uvicorn.run(
        create_bare_app(Settings.from_env()),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
