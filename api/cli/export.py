"""`dsar export SUBJECT --format json|csv [--purpose access|portability] -o FILE.zip`.

Writes the same bundle the API serves, with a progress bar. The bytes go to `FILE.zip.part`,
renamed to `FILE.zip` only once the bundle is complete, so a failed export leaves no file that
could be taken for a whole one.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
from tqdm import tqdm  # type: ignore[import-untyped]  # types-tqdm is not installed

from api.cli._common import CommandError, resolve_subject
from api.settings import Settings
from catalogue import load_catalogue
from domain import requests
from domain.audit import AuditUnavailable
from domain.principals import Operator
from exporters._registry import EXPORTERS, UnknownFormat
from exporters.bundle import PURPOSES, BundleError, build_bundle
from stores.registry import Stores


def add_export_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = subparsers.add_parser("export", help="write a subject's export bundle to a ZIP file")
    ex.add_argument("subject", help="a subject id, or a demo handle (alice, bob, …)")
    ex.add_argument("--format", choices=sorted(EXPORTERS), required=True)
    ex.add_argument("--purpose", choices=sorted(PURPOSES), default="access")
    ex.add_argument("--categories", help="only these categories, comma-separated")
    ex.add_argument("-o", "--output", type=Path, required=True, help="the ZIP file to write")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.add_argument(
        "--operator",
        help="who runs the export, as the request records it (default: the system user name)",
    )


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    output: Path = args.output
    part = output.with_name(output.name + ".part")
    categories = [c.strip() for c in args.categories.split(",")] if args.categories else None
    operator = Operator(args.operator or getpass.getuser())
    if not operator.user.isprintable() or not 0 < len(operator.user) <= 200:
        raise CommandError("--operator is a name of 1 to 200 printable characters")

    async def run() -> tuple[int, str]:
        catalogue = load_catalogue(settings.catalogue_file)
        deployment = settings.locate()
        stores = await Stores.open(deployment.stores, catalogue, deployment.service_dsn)
        db = await asyncpg.connect(deployment.service_dsn)
        try:
            sid = await resolve_subject(stores, args.subject)
            export_id = uuid4()
            # The request and its audit row are committed before any data is read.
            case = await requests.open_by_operator(
                db, settings.rules().requests, operator, sid, kind=args.purpose
            )
            chunks = build_bundle(
                stores,
                catalogue,
                sid,
                format=args.format,
                purpose=args.purpose,
                categories=categories,
                export_id=export_id,
                generated_at=datetime.now(UTC),
            )
            bar = tqdm(unit="B", unit_scale=True, desc="export", disable=args.no_progress)
            written = 0
            with bar, part.open("wb") as f:
                async for chunk in chunks:
                    await asyncio.to_thread(f.write, chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                await asyncio.to_thread(os.fsync, f.fileno())
            await requests.close_by_operator(db, case, operator, export_id)
            return written, str(export_id)
        finally:
            await db.close()
            await stores.close()

    try:
        written, export_id = asyncio.run(run())
    except BaseException as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, BundleError | UnknownFormat):
            raise CommandError(str(exc)) from None
        if isinstance(exc, AuditUnavailable):
            raise CommandError("the audit log did not take the request; no file written") from None
        if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            raise CommandError(f"export failed ({type(exc).__name__}); no file written") from exc
        raise
    part.replace(output)
    print(f"wrote {output} ({written:,} bytes, export {export_id})", file=sys.stderr)
    return 0
