"""The bare endpoint of scenario 4: Starlette + asyncpg + orjson, no GraphQL.

`POST /graphql` with a customer token answers what dsar answers to `bench._queries.me_query`:
the same SQL statements (identity link, then one per category, run concurrently), the same
JSON (camelCase fields, signed page cursors, withheld values as `…Held` booleans). It checks
the token's ES256 signature, issuer, audience and expiry, as any real API must; it skips
everything else dsar does (scopes, GraphQL parsing, validation and execution, limits, logs).

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
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

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
from bench._queries import FIRST_PAGE, LIST_LIMIT, camel, kind
from catalogue import Catalogue, Category, load_catalogue
from stores.postgres import select_list

KEY_FILE = Path("dev-issuer") / "dev-issuer-es256.jwk.json"
IDENTITY = "SELECT subject_id FROM identity_links WHERE issuer = $1 AND sub = $2"


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def single_sql(cat: Category) -> str:
    return (
        f"SELECT subject_id, {select_list(cat)} FROM {_quote(cat.key)} "  # noqa: S608  # catalogue identifiers
        "WHERE subject_id = any($1::uuid[])"
    )


def page_sql(cat: Category) -> str:
    at = _quote(cat.time_field or "id")
    return (
        "SELECT s.sid AS subject_id, t.* FROM unnest($1::uuid[]) AS s(sid), LATERAL ("  # noqa: S608  # catalogue identifiers
        f"SELECT {select_list(cat)}, {at} AS _at, id AS _id "
        f"FROM {_quote(cat.key)} WHERE subject_id = s.sid  ORDER BY {at}, id LIMIT $2) t"
    )


def cursor(secret: bytes, category: str, at: datetime, record_id: int) -> str:
    payload = orjson.dumps([category, at.isoformat(), record_id])
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
    for path in sorted(folder.iterdir()):
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
    return out


class Bare:
    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.deployment = settings.locate()
        raw = orjson.loads((settings.home / KEY_FILE).read_bytes())
        self.key = ECKey.import_key({k: v for k, v in raw.items() if k != "d"})  # public part
        self.claims = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": DEV_ISSUER},
            aud={"essential": True, "value": settings.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        self.pools: dict[str, asyncpg.Pool] = {}
        self.store_of: dict[str, str] = {}
        self.media: Path = settings.home / "media"
        for sc in self.deployment.stores.stores:
            for key in sc.categories:
                self.store_of[key] = sc.name
            if sc.kind == "media" and sc.path is not None:
                self.media = sc.path

    async def open(self) -> None:
        for sc in self.deployment.stores.stores:
            if sc.kind == "postgres" and sc.dsn is not None:
                self.pools[sc.name] = await asyncpg.create_pool(sc.dsn, min_size=1, max_size=10)

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()

    async def category(self, cat: Category, sid: UUID) -> Any:
        how = kind(cat)
        if cat.key == "recordings":
            return await asyncio.to_thread(files, self.media / str(sid))
        pool = self.pools[self.store_of[cat.key]]
        if how == "single":
            row = await pool.fetchrow(single_sql(cat), [sid])
            return None if row is None else record(cat, row)
        limit = FIRST_PAGE + 1 if how == "paged" else LIST_LIMIT
        rows = await pool.fetch(page_sql(cat), [sid], limit)
        if how == "list":
            return [record(cat, r) for r in rows]
        page = rows[:FIRST_PAGE]
        edges = [
            {
                "node": record(cat, r),
                "cursor": cursor(self.settings.secret_key, cat.key, r["_at"], r["_id"]),
            }
            for r in page
        ]
        return {
            "edges": edges,
            "pageInfo": {
                "hasNextPage": len(rows) > FIRST_PAGE,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    async def me(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise JoseError("no bearer token")
            claims = jwt.decode(token, self.key, algorithms=["ES256"]).claims
            self.claims.validate(claims)
        except (JoseError, ValueError):
            return Response(b'{"error":"invalid_token"}', 401, media_type="application/json")
        orjson.loads(await request.body())  # a real endpoint reads its body; dsar does
        accounts = self.pools[self.store_of["profile"]]
        sid = await accounts.fetchval(IDENTITY, claims["iss"], claims["sub"])
        me: dict[str, Any] | None = None
        if sid is not None:
            cats = list(self.catalogue)
            values = await asyncio.gather(*(self.category(c, sid) for c in cats))
            me = {"id": str(sid), **{camel(c.key): v for c, v in zip(cats, values, strict=True)}}
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
