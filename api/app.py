"""The Starlette application: one `create_app(settings)`; the lifespan opens and closes it all."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from api.account import account_routes
from api.downloads import export_download
from api.graphiql import graphiql_routes
from api.graphql_http import graphql_endpoint
from api.jwks import KeySource
from api.metrics import Metrics
from api.middleware import EdgeMiddleware
from api.recordings import recording
from api.security import Security
from api.settings import Settings
from api.tracing import TracingMiddleware
from api.tracing import configure as configure_tracing
from catalogue import load_catalogue
from domain.exports import fail_orphans
from domain.leases import Leases
from domain.services import Services
from domain.turns import Turns
from schema import build_schema
from schema.scopes import root_fields
from stores.pool import create_pool
from stores.registry import Stores

log = logging.getLogger("dsar.app")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def front(request: Request) -> Response:
    """`/` leads to the account page, where a person starts (it links to the rest)."""
    return RedirectResponse("/account", status_code=302)


async def readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks = await services.ready()
    checks["keys"] = request.app.state.security.ready
    metrics: Metrics = request.app.state.metrics
    for name, up in checks.items():
        metrics.store_up.labels(name).set(1 if up else 0)
    ready = all(checks.values())
    return JSONResponse(
        {"ready": ready, "checks": checks},
        status_code=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )


def create_app(
    settings: Settings, *, key_sources: Mapping[str, KeySource] | None = None
) -> Starlette:
    """`key_sources` adds trusted issuers whose keys are known in-process (tests, embedding)."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        traces = configure_tracing(settings)  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set
        catalogue = load_catalogue(settings.catalogue_file)
        deployment = settings.locate()
        stores = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
        try:
            db = await create_pool(deployment.service_dsn)
        except BaseException:
            await stores.close()
            raise
        leases = Leases(deployment.service_dsn)
        turns = Turns(settings.export_streams, settings.export_wait)
        app.state.services = Services(settings.rules(), catalogue, stores, db, leases, turns)
        orphans = await fail_orphans(db)
        if orphans:
            log.warning("exports interrupted by a stop were failed", extra={"event": str(orphans)})
        app.state.schema = build_schema(catalogue, dev=settings.dev_mode)
        app.state.root_fields = root_fields(app.state.schema)
        app.state.security = Security.open(settings, key_sources or {})
        if settings.dev_issuer:
            log.warning("the development token issuer is ON: never run like this in production")
        try:
            yield
        finally:
            await app.state.security.close()
            await leases.close()
            await db.close()
            await stores.close()
            if traces is not None:
                traces.shutdown()  # sends what is left

    app = Starlette(
        routes=[
            Route("/", front),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint),
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/recordings/{name}", recording),
            Route("/exports/{id}", export_download),
            *account_routes(settings),
            *graphiql_routes(settings),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(
        EdgeMiddleware,
        metrics=metrics,
        max_body=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )
    app.add_middleware(TracingMiddleware)  # outermost: the request's span holds everything
    return app
