"""`dsar`: serve, migrate, seed and the other pieces of CONTRACT.md, one at a time."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from api.cli._common import CommandError, resolve_subject
from api.cli.audit import add_audit_parser, cmd_audit
from api.cli.export import add_export_parser, cmd_export
from api.cli.partner import add_partner_parser, cmd_partner
from api.cli.requests import add_requests_parsers, cmd_report, cmd_requests
from api.cli.serve import add_serve_parser, cmd_serve, terminate
from api.devissuer import DevIssuer
from api.settings import DEV_ISSUER, Settings, SettingsError
from api.stores_cli import add_stores_parser, cmd_stores
from catalogue import CatalogueError, load_catalogue
from stores.config import StoresError
from stores.deployment import Deployment, migrate
from stores.migrate import MigrationError
from stores.registry import Stores
from stores.seed import seed

# Errors we expect and explain in one line; anything else is a bug and shows a traceback.
EXPECTED = (CatalogueError, StoresError, MigrationError, SettingsError, OSError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dsar", description="Data subject access and portability.")
    p.add_argument("--traceback", action="store_true", help="show the full error on failure")
    sub = p.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    sub.add_parser("migrate", help="create missing databases and apply migrations")
    sd = sub.add_parser("seed", help="load deterministic synthetic subjects")
    sd.add_argument("--subjects", type=int, default=0)
    sd.add_argument("--heavy-events", type=int, default=0)
    db = sub.add_parser("db-url", help="print the URL of the service database or of a store")
    db.add_argument("store", nargs="?")
    db.add_argument(
        "--owner",
        action="store_true",
        help="the service database as its owner (the service's own role sees only the rows a "
        "transaction is bound to)",
    )
    tk = sub.add_parser("token", help="demo only: mint an access token from the dev issuer")
    who = tk.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="SUBJECT")
    who.add_argument("--partner", metavar="CLIENT_ID")
    who.add_argument("--support", metavar="AGENT_ID")
    who.add_argument("--staff", metavar="STAFF_ID", help="a privacy staff member (privacy:manage)")
    tk.add_argument("--ttl", type=int, default=3600)
    add_export_parser(sub)
    add_partner_parser(sub)
    add_stores_parser(sub)
    add_requests_parsers(sub)
    add_audit_parser(sub)
    ln = sub.add_parser("link", help="link a login at an identity provider to a subject")
    ln.add_argument("subject")
    ln.add_argument("--issuer", required=True)
    ln.add_argument("--sub", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)  # as Ctrl-C: clean-ups run (no half-written file)
    try:
        settings = Settings.from_env()
        handler = COMMANDS[args.command]
        return handler(settings, args)
    except (*EXPECTED, CommandError) as exc:
        if args.traceback:
            raise
        print(f"dsar {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    """An OS error in words (`No space left on device: out.zip`), never `[Errno 28] …`."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _with_stores(settings: Settings, work: Callable[[Deployment, Stores], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        deployment = settings.locate()
        await migrate(deployment)
        catalogue = load_catalogue(settings.catalogue_file)
        stores = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
        try:
            return await work(deployment, stores)
        finally:
            await stores.close()

    return asyncio.run(run())


OWNER_MISSING = (
    "DSAR_OWNER_DATABASE_URL is not set: migrating with DSAR_DATABASE_URL, the service's own "
    "role. That works only if this role owns the schema, and then row-level security does not "
    "bind the service: give the owner's URL to `dsar migrate` and a login role in dsar_app to "
    "`dsar serve` (docs/OPERATIONS.md, Databases)"
)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> dict[str, list[str]]:
        load_catalogue(
            settings.catalogue_file
        )  # a broken catalogue stops here, before any database is touched
        deployment = settings.locate()
        if deployment.owner_dsn is None:
            print(f"dsar migrate: warning: {OWNER_MISSING}", file=sys.stderr)
        return await migrate(deployment)

    for schema, names in asyncio.run(run()).items():
        print(f"{schema}: {', '.join(names) if names else 'up to date'}")
    return 0


NOT_DEMO = (
    "the demo people go only into the demo company: DSAR_STORES names a company's own "
    "stores, which dsar reads and never writes"
)


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    if args.subjects < 0 or args.heavy_events < 0:
        raise CommandError("counts must not be negative")
    if settings.stores_file is not None:
        raise CommandError(NOT_DEMO)

    async def work(d: Deployment, stores: Stores) -> list[str]:
        return await seed(
            stores,
            load_catalogue(settings.catalogue_file),
            issuer=DEV_ISSUER,
            subjects=args.subjects,
            heavy_events=args.heavy_events,
        )

    loaded = _with_stores(settings, work)
    print(f"seeded {len(loaded)} new subjects" + (f" ({', '.join(loaded[:8])}…)" if loaded else ""))
    return 0


def cmd_db_url(settings: Settings, args: argparse.Namespace) -> int:
    deployment = settings.locate()
    if args.owner:
        if args.store is not None or deployment.owner_dsn is None:
            raise CommandError(
                "--owner names the service database's owner: set DSAR_OWNER_DATABASE_URL "
                "(the embedded server has one), and name no store"
            )
        print(deployment.owner_dsn)
        return 0
    if args.store is None:
        print(deployment.service_dsn)
        return 0
    for store in deployment.stores.stores:
        if store.name == args.store and store.kind == "postgres":
            print(store.dsn)
            return 0
    names = ", ".join(s.name for s in deployment.stores.stores if s.kind == "postgres")
    raise CommandError(f"no PostgreSQL store named '{args.store}' (stores: {names})")


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.dev_issuer:
        raise CommandError("the development issuer is off (it is on only with DSAR_DEV_ISSUER=1)")
    issuer = DevIssuer(settings.home / "dev-issuer", DEV_ISSUER, settings.audience)
    if args.customer:
        # Demo subjects are linked to the dev issuer by their handle (see `dsar seed`).
        print(issuer.mint("customer", args.customer, ttl=args.ttl))
    elif args.partner:
        print(issuer.mint("partner", args.partner, ttl=args.ttl))
    elif args.staff:
        print(issuer.mint("staff", args.staff, ttl=args.ttl))
    else:
        print(issuer.mint("support", args.support, ttl=args.ttl))
    return 0


def cmd_link(settings: Settings, args: argparse.Namespace) -> int:
    async def work(d: Deployment, stores: Stores) -> None:
        sid = await resolve_subject(stores, args.subject)
        await stores.subjects.link(sid, args.issuer, args.sub)

    _with_stores(settings, work)
    print("linked")
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "seed": cmd_seed,
    "db-url": cmd_db_url,
    "link": cmd_link,
    "token": cmd_token,
    "export": cmd_export,
    "partner": cmd_partner,
    "stores": cmd_stores,
    "audit": cmd_audit,
    "requests": cmd_requests,
    "report": cmd_report,
}

if __name__ == "__main__":
    sys.exit(main())
