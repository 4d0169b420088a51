"""`dsar audit verify | checkpoint | export-checkpoints`: the audit log and its signed checkpoints
(domain/checkpoints.py, docs/SECURITY.md)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from api.cli._common import CommandError
from api.settings import Settings
from domain.checkpoints import (
    AuditKey,
    AuditPublicKey,
    Checkpoint,
    CheckpointError,
    CheckpointRefused,
    caught_up,
    stored,
    verify,
)


def add_audit_parser(subparsers: Any) -> None:
    au = subparsers.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit", required=True
    )
    av = au.add_parser(
        "verify",
        help="recompute the hash chain, check it against every signed checkpoint, and name "
        "the first row missing or changed",
    )
    av.add_argument(
        "--checkpoints",
        metavar="FILE",
        type=Path,
        help="checkpoints kept outside the database (the JSON lines of export-checkpoints)",
    )
    av.add_argument(
        "--public-key",
        metavar="BASE64",
        help="check the signatures with this public key (what `dsar audit public-key` prints) "
        "instead of DSAR_AUDIT_SIGNING_KEY: an auditor needs no signing key",
    )
    au.add_parser("public-key", help="print the public half of the audit signing key (base64)")
    au.add_parser("checkpoint", help="sign and store a checkpoint of the log now")
    ex = au.add_parser(
        "export-checkpoints", help="print the signed checkpoints as JSON lines, for safekeeping"
    )
    ex.add_argument("--after", type=int, default=0, metavar="SEQ", help="only those past SEQ")


def _kept(path: Path) -> list[Checkpoint]:
    """Checkpoints kept outside the database: one JSON object a line."""
    kept = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            kept.append(Checkpoint.from_json(orjson.loads(line)))
        except (orjson.JSONDecodeError, CheckpointError, AttributeError, TypeError):
            raise CommandError(f"{path}: line {n} is not a checkpoint") from None
    return kept


def _public(text: str) -> AuditPublicKey:
    try:
        return AuditPublicKey(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise CommandError(
            "--public-key: 32 bytes in base64, as `dsar audit public-key` prints"
        ) from None


async def _run(
    settings: Settings, args: argparse.Namespace, kept: list[Checkpoint]
) -> tuple[int, str]:
    key = AuditKey(settings.audit_signing_key)
    if args.audit == "public-key":
        return 0, base64.b64encode(key.raw).decode()
    conn = await asyncpg.connect(settings.locate().service_dsn)
    try:
        if args.audit == "checkpoint":
            try:
                made = await caught_up(conn, key)
            except CheckpointRefused as exc:
                return 1, f"no checkpoint signed: {exc.result}"
            if made is not None:
                return 0, f"checkpoint signed at seq {made.seq}"
            last = await stored(conn)
            return 0, f"nothing new since the checkpoint at seq {last[-1].seq if last else 0}"
        if args.audit == "export-checkpoints":
            return 0, "\n".join(
                orjson.dumps(c.to_json()).decode() for c in await stored(conn, args.after)
            )
        public = _public(args.public_key) if args.public_key else key
        result = await verify(conn, public, kept)
        return (0 if result.ok else 1), str(result)
    finally:
        await conn.close()


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """`verify`: 0 when whole, 1 naming the first row missing or changed; `checkpoint`: 0 when
    signed or nothing new, 1 when the log is broken (nothing is signed over it)."""
    kept = _kept(args.checkpoints) if getattr(args, "checkpoints", None) else []
    try:
        code, out = asyncio.run(_run(settings, args, kept))
    except asyncpg.UndefinedTableError:
        raise CommandError("the service database has no audit log: run `dsar migrate`") from None
    except asyncpg.PostgresError as exc:
        raise CommandError(f"the service database failed with SQLSTATE {exc.sqlstate}") from None
    if out:
        print(out)
    return code
