"""The Starlette application: one `create_app(settings)`; the lifespan opens and closes it all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from api.account import account_routes
from api.admission import Admission
from api.downloads import export_download
from api.graphiql import graphiql_routes
from api.graphql_http import graphql_endpoint
from api.jwks import KeySource
from api.mail import mailer_for
from api.metrics import Metrics
from api.middleware import EdgeMiddleware
from api.recordings import recording
from api.security import Security
from api.settings import Settings
from api.tracing import TracingMiddleware
from api.tracing import configure as configure_tracing
from api.trusted import TrustedDocuments
from catalogue import Catalogue, load_catalogue
from domain import checkpoints, requests
from domain.budget import ExportBudget
from domain.checkpoints import AuditKey
from domain.errors import STORE_FAILURES
from domain.exports import fail_orphans
from domain.leases import Leases
from domain.services import Services
from domain.turns import Turns
from schema import build_schema
from schema.scopes import root_fields
from stores.pool import create_pool
from stores.registry import Stores
from stores.roles import role_report

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


def contact_problem(catalogue: Catalogue, settings: Settings) -> str | None:
    """Outside development, every statement names the controller's contact e-mail, through
    which each right that works "by request" is exercised: it must be a real address."""
    c = catalogue.controller
    if settings.dev_mode or c.usable_email:
        return None
    what = "empty" if c.email is None else f"the demonstration address {c.email}"
    return (
        f"the catalogue's contact e-mail ([controller] email in {catalogue.source}) is {what}: "
        "every right-to-know statement and copy would name it as where to exercise a right. "
        "Set the company's privacy address in its catalogue (DSAR_CATALOGUE) and remove "
        "demo_email, or run with DSAR_DEV_ISSUER=1 for a demonstration."
    )


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    metrics: Metrics = request.app.state.metrics
    try:
        metrics.requests_overdue.set(await requests.overdue_count(services.db))
    except (*STORE_FAILURES, asyncpg.PostgresError) as exc:
        # The other figures still answer; this one keeps its last value.
        log.warning("overdue requests not counted", extra={"error": type(exc).__name__})
    return await metrics.endpoint(request)


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
        stores = await Stores.open(
            deployment.stores,
            catalogue,
            deployment.service_dsn,
            snapshots=settings.export_streams,
            watch_logins=True,
        )
        try:
            db = await create_pool(deployment.service_dsn)
        except BaseException:
            await stores.close()
            raise
        try:
            # Group commit's own connections (domain/_groupcommit.py): one batch in flight,
            # and one spare while a broken connection is replaced.
            audit_db = await create_pool(deployment.service_dsn, min_size=1, max_size=2)
        except BaseException:
            await db.close()
            await stores.close()
            raise
        async with db.acquire() as conn:
            problem = (await role_report(conn)).problem()
        if problem:
            log.warning(problem)
        leases = Leases(deployment.service_dsn)
        turns = Turns(settings.export_streams, settings.export_wait)
        app.state.services = Services(
            settings.rules(),
            catalogue,
            stores,
            db,
            leases,
            turns,
            budget,
            mailer=mailer_for(settings.smtp_url, settings.mail_from),
            public_url=settings.public_url,
            audit_db=audit_db,
        )
        anchoring = None
        if settings.audit_checkpoint_interval and settings.audit_signing_key:
            anchoring = asyncio.create_task(
                checkpoints.every(
                    db, AuditKey(settings.audit_signing_key), settings.audit_checkpoint_interval
                )
            )
        orphans = await fail_orphans(db)
        if orphans:
            log.warning("exports interrupted by a stop were failed", extra={"event": str(orphans)})
        app.state.schema = build_schema(catalogue, dev=settings.dev_mode)
        app.state.root_fields = root_fields(app.state.schema)
        app.state.trusted_documents = TrustedDocuments.of(catalogue)
        app.state.security = Security.open(settings, key_sources or {})
        if settings.dev_issuer:
            log.warning("the development token issuer is ON: never run like this in production")
        problem = contact_problem(catalogue, settings)
        if problem is not None:
            # `dsar serve` refuses to start; an app built another way says so loudly.
            log.error(problem)
        try:
            yield
        finally:
            if anchoring is not None:
                anchoring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await anchoring
            await app.state.security.close()
            await leases.close()
            await app.state.services.audit.close()  # what waits is written first
            await audit_db.close()
            await db.close()
            await stores.close()
            if traces is not None:
                traces.shutdown()  # sends what is left

    app = Starlette(
        routes=[
            Route("/", front),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
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
    admission = Admission(
        settings.admission_slots, settings.admission_queue, settings.admission_wait
    )
    # Shared by the edge (which marks small requests) and the export streams (which give way).
    budget = ExportBudget(settings.export_active, settings.export_share)
    metrics.watch(budget)
    app.add_middleware(
        EdgeMiddleware,
        metrics=metrics,
        max_body=settings.max_body_bytes,
        admission=admission,
        budget=budget,
        body_timeout=settings.body_timeout,
    )
    app.add_middleware(TracingMiddleware)  # outermost: the request's span holds everything
    return app
