"""The stores file: which backing store holds which category, each store with its own DSN.

[stores.accounts]
kind = "postgres"
dsn = "postgresql://dsar@accounts-replica/accounts"
schema = "accounts"          # optional: migration set that `dsar migrate` applies here
categories = ["profile", "identifiers"]

[stores.media]
kind = "media"
path = "/srv/media"
categories = ["recordings"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

KINDS = ("postgres", "media")
MIGRATION_SETS = ("accounts", "billing", "analytics")


class StoresError(Exception):
    """A stores file that cannot be used; one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    name: str
    kind: str
    categories: tuple[str, ...]
    dsn: str = ""
    path: Path | None = None
    schema: str | None = None


@dataclass(frozen=True, slots=True)
class StoresConfig:
    stores: tuple[StoreConfig, ...]
    source: str

    def store_of(self, category: str) -> StoreConfig:
        for store in self.stores:
            if category in store.categories:
                return store
        raise KeyError(category)

    def check_covers(self, categories: Iterable[str]) -> None:
        """Every category of the catalogue must live somewhere, and nothing unknown may."""
        wanted = set(categories)
        mapped = [c for s in self.stores for c in s.categories]
        for key in sorted(wanted - set(mapped)):
            raise StoresError(f"{self.source}: category '{key}' has no store")
        for key in sorted(set(mapped) - wanted):
            raise StoresError(f"{self.source}: category '{key}' is not in the catalogue")
        dupes = sorted({c for c in mapped if mapped.count(c) > 1})
        if dupes:
            raise StoresError(f"{self.source}: category '{dupes[0]}' is mapped to two stores")


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name (keeps host, port, socket query)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


# The demo plays the company's real systems: three databases on one server plus a folder.
DEMO_LAYOUT: dict[str, tuple[str, ...]] = {
    "accounts": (
        "profile",
        "identifiers",
        "professional",
        "preferences",
        "provided",
        "sensitive",
    ),
    "billing": ("payment",),
    "analytics": ("device", "web_analytics", "geolocation"),
}


def demo_layout(server_url: str, media_dir: Path, prefix: str = "dsar") -> StoresConfig:
    stores = [
        StoreConfig(
            name=name,
            kind="postgres",
            categories=cats,
            dsn=with_database(server_url, f"{prefix}_{name}"),
            schema=name,
        )
        for name, cats in DEMO_LAYOUT.items()
    ]
    stores.append(
        StoreConfig(name="media", kind="media", categories=("recordings",), path=media_dir)
    )
    return StoresConfig(stores=tuple(stores), source="demo layout")


def load_stores(path: Path) -> StoresConfig:
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StoresError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise StoresError(f"{name}: not valid TOML ({exc})") from None
    unknown = set(data) - {"stores"}
    if unknown:
        raise StoresError(f"{name}: unknown key '{sorted(unknown)[0]}'")
    table = data.get("stores")
    if not isinstance(table, dict) or not table:
        raise StoresError(f"{name}: no [stores.<name>] tables")
    return StoresConfig(
        stores=tuple(_store(name, key, value, path.parent) for key, value in table.items()),
        source=name,
    )


def _store(file: str, name: str, raw: object, base: Path) -> StoreConfig:
    if not isinstance(raw, dict):
        raise StoresError(f"{file}: stores.{name} must be a table")
    unknown = set(raw) - {"kind", "dsn", "path", "schema", "categories"}
    if unknown:
        raise StoresError(f"{file}: stores.{name} has unknown key '{sorted(unknown)[0]}'")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise StoresError(f"{file}: stores.{name}.kind must be one of {', '.join(KINDS)}")
    cats = raw.get("categories")
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats) or not cats:
        raise StoresError(f"{file}: stores.{name}.categories must be a list of category keys")
    schema = raw.get("schema")
    if schema is not None and schema not in MIGRATION_SETS:
        raise StoresError(
            f"{file}: stores.{name}.schema must be one of {', '.join(MIGRATION_SETS)}"
        )
    if kind == "postgres":
        dsn = raw.get("dsn")
        if not isinstance(dsn, str) or not dsn.startswith(("postgres://", "postgresql://")):
            raise StoresError(f"{file}: stores.{name}.dsn must be a postgresql:// URL")
        return StoreConfig(name, kind, tuple(cats), dsn=dsn, schema=schema)
    folder = raw.get("path")
    if not isinstance(folder, str) or not folder:
        raise StoresError(f"{file}: stores.{name}.path must name a folder")
    return StoreConfig(name, kind, tuple(cats), path=(base / folder).resolve())
