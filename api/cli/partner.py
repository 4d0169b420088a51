"""`dsar partner add|list|disable`: the partner controllers that may receive transfers."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from api.cli._common import CommandError
from api.settings import Settings
from catalogue import load_catalogue
from domain.partners import (
    GrantRefused,
    PartnerRecord,
    add_partner,
    disable_partner,
    list_partners,
)
from stores.deployment import migrate


def add_partner_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("partner", help="manage the partners that may receive transfers")
    sub = p.add_subparsers(dest="partner_command", required=True)
    add = sub.add_parser("add", help="register a partner controller")
    add.add_argument("client_id", help="its OAuth client id at the issuer")
    add.add_argument("--name", required=True, help="its name, as people will see it")
    add.add_argument(
        "--categories", required=True, help="the categories it may ever receive, comma-separated"
    )
    add.add_argument("--contact", help="its privacy contact")
    add.add_argument("--issuer", help="the issuer of its tokens (default: the only trusted one)")
    add.add_argument(
        "--public-key",
        type=Path,
        help="a public RSA JWK file (RSA-OAEP-256, 2048 bits or more): bundles are encrypted to it",
    )
    sub.add_parser("list", help="list the partners")
    off = sub.add_parser("disable", help="stop a partner: it gets nothing more")
    off.add_argument("client_id")


def _issuer(settings: Settings, given: str | None) -> str:
    if given:
        return given
    trusted = settings.trusted_issuers
    if len(trusted) != 1:
        raise CommandError(
            "name the partner's issuer with --issuer (trusted: "
            + (", ".join(trusted) or "none")
            + ")"
        )
    return trusted[0]


def _public_key(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        jwk = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        raise CommandError(f"{path}: not a JSON Web Key") from None
    if not isinstance(jwk, dict):
        raise CommandError(f"{path}: not a JSON Web Key")
    return jwk


def _line(p: PartnerRecord) -> str:
    state = "disabled" if p.disabled_at else "active"
    key = " encrypted" if p.public_jwk else ""
    return f"{p.client_id}\t{p.name}\t{state}{key}\t{','.join(p.categories)}\t{p.issuer}"


def cmd_partner(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> int:
        deployment = settings.locate()
        await migrate(deployment)
        conn = await asyncpg.connect(deployment.service_dsn)
        try:
            if args.partner_command == "add":
                categories = [c.strip() for c in args.categories.split(",") if c.strip()]
                p = await add_partner(
                    conn,
                    load_catalogue(settings.catalogue_file),
                    client_id=args.client_id,
                    issuer=_issuer(settings, args.issuer),
                    name=args.name,
                    categories=categories,
                    contact=args.contact,
                    public_jwk=_public_key(args.public_key),
                )
                print(f"added {_line(p)}")
            elif args.partner_command == "list":
                for p in await list_partners(conn):
                    print(_line(p))
            elif not await disable_partner(conn, args.client_id):
                raise CommandError(f"no partner {args.client_id!r}")
            else:
                print(f"disabled {args.client_id}")
            return 0
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except GrantRefused as exc:
        raise CommandError(str(exc)) from None
