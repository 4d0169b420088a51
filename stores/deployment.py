"""Where this deployment's databases are: the service database, the stores, and migrations.

With no DSAR_DATABASE_URL an embedded PostgreSQL under DSAR_HOME is started, with an owner role
that migrates and a service role that serves (stores/roles.py); with no DSAR_STORES the demo
layout puts the company's store databases beside the service database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from stores.config import StoresConfig, load_stores, with_database
from stores.embedded import running_in, start_embedded, stop_unless_shared
from stores.migrate import apply, ensure_database, migrations_for
from stores.roles import EMBEDDED_SERVICE, embedded_roles, with_user


@dataclass(slots=True)
class Deployment:
    service_dsn: str
    stores: StoresConfig
    embedded: Any = None
    # The demo company (no stores file): the only stores dsar ever creates or writes to.
    demo: bool = False
    # The owner's URL, which migrations run with (DSAR_OWNER_DATABASE_URL, or the embedded
    # server's owner role); None when only the service's URL is known.
    owner_dsn: str | None = None
    # Whether this process started the embedded server (it was not running before).
    started_here: bool = False

    @property
    def migration_dsn(self) -> str:
        """The owner's URL, else the service's (which can then only find nothing to do)."""
        return self.owner_dsn or self.service_dsn

    def stop(self) -> bool:
        """Stops the embedded server if this process started it and no other process still
        uses it; returns whether it was stopped. A server another process started is never
        stopped here (a second `dsar serve` on the same home must not pull the first one's
        database away)."""
        if self.embedded is None or not self.started_here:
            return False
        stopped = stop_unless_shared(self.embedded)
        self.embedded = None
        return stopped


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


def locate(
    home: Path,
    database_url: str | None = None,
    stores_file: Path | None = None,
    demo_mysql_url: str | None = None,
    owner_database_url: str | None = None,
) -> Deployment:
    embedded = None
    started_here = False
    if database_url:
        service_dsn, owner_dsn = database_url, owner_database_url
    else:
        started_here = not running_in(home / "pg")
        server, embedded = start_embedded(home / "pg")
        owner_dsn = embedded_roles(server, "dsar")
        service_dsn = with_database(with_user(server, EMBEDDED_SERVICE), "dsar")
    if stores_file is not None:
        config = load_stores(stores_file)
    else:
        # The demo company's databases are made and seeded by dsar: as the owner.
        base = owner_dsn or service_dsn
        config = demo_layout(base, home / "media", database_name(service_dsn), demo_mysql_url)
    return Deployment(
        service_dsn,
        config,
        embedded,
        demo=stores_file is None,
        owner_dsn=owner_dsn,
        started_here=started_here,
    )


DEMO_STORES = Path(__file__).with_name("demo.toml")


def demo_layout(
    server_url: str, media_dir: Path, prefix: str = "dsar", mysql_url: str | None = None
) -> StoresConfig:
    """The demo company (stores/demo.toml) on this server: one database per system, named
    after the service database, and the CRM on `mysql_url`'s server when one is given."""
    overrides: dict[str, dict[str, str]] = {
        name: {"dsn": with_database(server_url, f"{prefix}_{name}")}
        for name in ("app", "analytics", "billing", "crm")
    }
    overrides["media"] = {"path": str(media_dir)}
    if mysql_url:
        overrides["crm"] = {"kind": "mysql", "dsn": with_database(mysql_url, f"{prefix}_crm")}
    return load_stores(DEMO_STORES, overrides=overrides)


async def migrate(deployment: Deployment, folder: Path | None = None) -> dict[str, list[str]]:
    """Creates missing databases and applies pending migrations; returns what was applied.

    A company's stores are never touched: only the service database, and the demo company's
    databases and folder when no stores file is given."""
    demo = deployment.stores.stores if deployment.demo else ()
    targets = [("service", deployment.migration_dsn)] + [
        (s.migrations, s.dsn) for s in demo if s.migrations is not None and s.kind == "postgres"
    ]
    applied: dict[str, list[str]] = {}
    for schema, dsn in targets:
        await ensure_database(with_database(dsn, "postgres"), database_name(dsn))
        applied[schema] = await apply(dsn, migrations_for(schema, folder and folder / schema))
    for store in demo:
        if store.kind == "files" and store.path is not None:
            store.path.mkdir(parents=True, exist_ok=True)
        if store.kind == "mysql" and store.migrations is not None:
            from stores.demo_mysql import ensure_tables  # only where a MySQL store is migrated

            applied[store.migrations] = await ensure_tables(store.dsn)
    return applied
