"""`dsar export SUBJECT --format json|csv [--purpose access|portability] -o FILE.zip`.

Writes the same bundle the API serves, with a progress bar. The bytes go to `FILE.zip.part`,
renamed to `FILE.zip` only once the bundle is complete; whatever fails (the folder, the disk,
a store, Ctrl-C or SIGTERM, the rename itself) the part is removed, so a failed export leaves
no file: a half copy of a person's data must not lie on a disk.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
from tqdm import tqdm  # type: ignore[import-untyped]  # types-tqdm is not installed

from api.cli._common import CommandError, resolve_subject
from api.settings import Settings
from catalogue import load_catalogue
from domain import requests
from domain.audit import AuditUnavailable
from domain.disclosures import person_facts, release_for
from domain.errors import STORE_FAILURES
from domain.own_records import DESCRIPTIONS, own_records
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


def checked_output(output: Path) -> Path:
    """The file to write, refused before anything is read when it cannot be written."""
    if output.is_dir():
        example = output / "copy.zip"
        raise CommandError(f"{output} is a folder: name the file to write, as {example}")
    folder = output.parent
    if not folder.is_dir():
        raise CommandError(f"no such folder: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write in the folder {folder}")
    return output


class WriteFailed(Exception):
    """The file could not be written (full disk, a quota, a file size limit, …)."""


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    output = checked_output(args.output)
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
            now = datetime.now(UTC)
            facts = await person_facts(stores, stores.subjects.pool, catalogue, sid, now)
            # An operator's copy: never verified by the person, so nothing is released.
            release = release_for(catalogue, facts, args.purpose, {"method": "operator"})
            chunks = build_bundle(
                stores,
                catalogue,
                sid,
                format=args.format,
                purpose=args.purpose,
                categories=categories,
                export_id=export_id,
                generated_at=now,
                facts=facts,
                release=release,
                service=await own_records(stores.subjects.pool, sid),
                service_descriptions=DESCRIPTIONS,
            )
            bar = tqdm(unit="B", unit_scale=True, desc="export", disable=args.no_progress)
            # Unbuffered: a failed write fails in _write, never again as the file closes.
            # aclosing: a failed write stops the bundle and frees its store connections
            # before the stores close (a pool waits for every connection it lent).
            with bar, part.open("wb", buffering=0) as f:
                written = 0
                async with aclosing(chunks):
                    async for chunk in chunks:
                        await _write(f.write, chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                await _write(os.fsync, f.fileno())
            await requests.close_by_operator(db, case, operator, export_id)
            return written, str(export_id)
        finally:
            await db.close()
            await stores.close()

    try:
        written, export_id = asyncio.run(run())
        part.replace(output)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        raise _plain(exc, output) from None
    print(f"wrote {output} ({written:,} bytes, export {export_id})", file=sys.stderr)
    return 0


async def _write(write: Callable[[Any], object], what: Any) -> None:
    try:
        await asyncio.to_thread(write, what)
    except OSError as exc:
        raise WriteFailed(exc.strerror or type(exc).__name__) from None


def _plain(exc: BaseException, output: Path) -> BaseException:
    """What a failed export says, in one line; anything unforeseen goes on as it is."""
    if isinstance(exc, BundleError | UnknownFormat | CommandError):
        return CommandError(str(exc))
    if isinstance(exc, WriteFailed):
        return CommandError(f"cannot write {output}: {exc}; no file was left")
    if isinstance(exc, AuditUnavailable):
        return CommandError("the audit log did not take the request; no file was left")
    if isinstance(exc, OSError) and exc.filename is not None:
        return CommandError(f"cannot write {output}: {exc.strerror}; no file was left")
    if isinstance(exc, STORE_FAILURES):
        return CommandError(f"a store did not answer ({type(exc).__name__}); no file was left")
    if isinstance(exc, asyncpg.PostgresError):
        return CommandError(f"a store failed ({type(exc).__name__}); no file was left")
    return exc
