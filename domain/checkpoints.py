"""Signed checkpoints of the audit log: its chain anchored outside the database (issue 18, item 4).

The hash chain shows a row edited behind the service's back, but whoever owns the database can
cut rows off its end, or rewrite a stretch and recompute every hash after it, and the chain still
holds. A checkpoint is signed with an Ed25519 key that never enters the database
(`DSAR_AUDIT_SIGNING_KEY`): it holds the head's sequence number and hash, and the hash of every
row since the checkpoint before (32 bytes a row), so `verify()` names the first row that is
missing, or that differs from what was signed (rewritten, or rows removed or put in before it).
Checkpoints are written periodically by every serving process and on demand (`dsar audit
checkpoint`); `dsar audit export-checkpoints` prints them as JSON lines to keep elsewhere, and
`dsar audit verify --checkpoints FILE` checks the log against those copies too, so deleting
checkpoints in the database hides nothing that was kept outside.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain._auditchain import GENESIS, ROWS_AFTER, VerifyResult, check_rows, walk
from stores.scope import Scope, bind, scoped

log = logging.getLogger("dsar.audit")

VERSION = "dsar-audit-checkpoint/v1"
_HASH = 32  # bytes of one row's SHA-256
# Rows one checkpoint covers at most: 1.6 MB of hashes, read and signed in one transaction.
MAX_ROWS = 50_000

Db = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (a copy kept outside that is not one of ours)."""


class CheckpointRefused(Exception):
    """The rows since the last checkpoint do not continue its chain: nothing is signed."""

    def __init__(self, result: VerifyResult) -> None:
        super().__init__(str(result))
        self.result = result


def _time(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int  # the head's seq
    prev_seq: int  # the seq of the checkpoint before (0 for the first)
    head_hash: str
    hashes: bytes  # the hashes of rows prev_seq + 1 .. seq
    at: datetime
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        """What is signed: every field, the row hashes by their own SHA-256."""
        digest = hashlib.sha256(self.hashes).hexdigest()
        parts = [VERSION, str(self.seq), str(self.prev_seq), self.head_hash, digest, _time(self.at)]
        return "\n".join(parts).encode()

    def covers(self, seq: int) -> bool:
        return self.prev_seq < seq <= self.seq

    def hash_of(self, seq: int) -> str:
        start = (seq - self.prev_seq - 1) * _HASH
        return self.hashes[start : start + _HASH].hex()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "seq": self.seq,
            "prev_seq": self.prev_seq,
            "head_hash": self.head_hash,
            "at": _time(self.at),
            "key_id": self.key_id,
            "hashes": base64.b64encode(self.hashes).decode(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        try:
            if data["version"] != VERSION:
                raise CheckpointError("not a checkpoint of this version")
            cp = cls(
                seq=int(data["seq"]),
                prev_seq=int(data["prev_seq"]),
                head_hash=str(data["head_hash"]),
                hashes=base64.b64decode(data["hashes"], validate=True),
                at=datetime.fromisoformat(data["at"]),
                key_id=str(data["key_id"]),
                signature=base64.b64decode(data["signature"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError("a checkpoint needs every field, well formed") from None
        if cp.at.tzinfo is None or len(cp.hashes) != _HASH * (cp.seq - cp.prev_seq):
            raise CheckpointError("a checkpoint needs every field, well formed")
        return cp

    @classmethod
    def of(cls, row: asyncpg.Record) -> Checkpoint:
        return cls(
            row["seq"],
            row["prev_seq"],
            row["head_hash"],
            bytes(row["hashes"]),
            row["at"],
            row["key_id"],
            bytes(row["signature"]),
        )


class AuditPublicKey:
    """The public half of the audit key: all `verify` needs (an auditor need not hold the key
    that signs). `key_id` names it."""

    def __init__(self, raw: bytes) -> None:
        self.public = Ed25519PublicKey.from_public_bytes(raw)
        self.raw = raw
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def signed(self, cp: Checkpoint) -> bool:
        """This key signed exactly this checkpoint."""
        if cp.key_id != self.key_id:
            return False
        try:
            self.public.verify(cp.signature, cp.message())
        except InvalidSignature:
            return False
        return cp.hashes[-_HASH:].hex() == cp.head_hash


class AuditKey(AuditPublicKey):
    """The Ed25519 key that signs checkpoints (its 32-byte seed)."""

    def __init__(self, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        super().__init__(self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(
        self, *, seq: int, prev_seq: int, head_hash: str, hashes: bytes, at: datetime
    ) -> Checkpoint:
        unsigned = Checkpoint(seq, prev_seq, head_hash, hashes, at, self.key_id, b"")
        signature = self._private.sign(unsigned.message())
        return Checkpoint(seq, prev_seq, head_hash, hashes, at, self.key_id, signature)


async def checkpoint(db: Db, key: AuditKey, most: int | None = None) -> Checkpoint | None:
    """Signs and stores a checkpoint of the rows since the last one, at most `most` of them
    (`MAX_ROWS`: a log that was never checkpointed is caught up a checkpoint at a time); None
    when there are none (or another process wrote this one first). Raises `CheckpointRefused`
    when those rows do not continue the last checkpoint's chain: a broken log is never signed
    as whole."""
    try:
        async with scoped(db, scope=Scope.AUDIT) as conn:
            last = await conn.fetchrow(
                "SELECT seq, head_hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
            )
            prev_seq, prev_hash = (last["seq"], last["head_hash"]) if last else (0, GENESIS)
            rows = await conn.fetch(ROWS_AFTER, prev_seq, most or MAX_ROWS)
            if not rows:
                return None
            broken = check_rows(rows, prev_seq, prev_hash)
            if broken is not None:
                raise CheckpointRefused(broken)
            cp = key.sign(
                seq=rows[-1]["seq"],
                prev_seq=prev_seq,
                head_hash=rows[-1]["hash"],
                hashes=b"".join(bytes.fromhex(r["hash"]) for r in rows),
                at=await conn.fetchval("SELECT now()"),
            )
            await conn.fetchval(
                "SELECT audit_checkpoint_add($1, $2, $3, $4, $5, $6, $7)",
                cp.seq,
                cp.prev_seq,
                cp.head_hash,
                cp.hashes,
                cp.at,
                cp.key_id,
                cp.signature,
            )
    except (asyncpg.UniqueViolationError, asyncpg.SerializationError):
        return None  # another process checkpointed the same rows a moment ago
    return cp


async def stored(db: Db, after: int = 0) -> list[Checkpoint]:
    """The checkpoints in the database, in order (those of seq > `after`)."""
    async with scoped(db, scope=Scope.AUDIT) as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit_checkpoints WHERE seq > $1 ORDER BY seq", after
        )
    return [Checkpoint.of(r) for r in rows]


def _anchors(
    key: AuditPublicKey, inside: Sequence[Checkpoint], outside: Iterable[Checkpoint]
) -> tuple[list[Checkpoint], VerifyResult | None]:
    """Every checkpoint, from the database and the copies kept outside, checked: signed by
    `key`, the two copies of one alike, each continuing the one before."""
    by_seq: dict[int, Checkpoint] = {}
    for cp in (*outside, *inside):
        if not key.signed(cp):
            return [], VerifyResult(
                0, GENESIS, cp.seq, "checkpoint", detail="not signed by the audit key"
            )
        kept = by_seq.setdefault(cp.seq, cp)
        if kept != cp:
            return [], VerifyResult(
                0, GENESIS, cp.seq, "checkpoint", detail="differs from the copy kept outside"
            )
    anchors = sorted(by_seq.values(), key=lambda c: c.seq)
    for before, cp in zip([None, *anchors], anchors, strict=False):
        if cp.prev_seq != (0 if before is None else before.seq):
            return [], VerifyResult(
                0,
                GENESIS,
                cp.seq,
                "checkpoint",
                detail=(
                    "preceded by a gap: the checkpoints between seq "
                    f"{cp.prev_seq} and this one are missing"
                ),
            )
    return anchors, None


async def verify(
    db: Db, key: AuditPublicKey, outside: Iterable[Checkpoint] = (), *, batch: int = 1000
) -> VerifyResult:
    """The chain recomputed, and checked against every signed checkpoint (in the database, and
    `outside`): names the first row missing, edited, rewritten, removed or put in."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await verify(conn, key, outside, batch=batch)
    if not db.is_in_transaction():
        # One snapshot for checkpoints and rows: what is appended meanwhile waits for next time.
        async with db.transaction(isolation="repeatable_read", readonly=True):
            return await verify(db, key, outside, batch=batch)
    await bind(db, scope=Scope.AUDIT)
    rows = await db.fetch("SELECT * FROM audit_checkpoints ORDER BY seq")
    anchors, bad = _anchors(key, [Checkpoint.of(r) for r in rows], outside)
    if bad is not None:
        return bad
    return await walk(db, batch, anchors)


async def caught_up(db: Db, key: AuditKey, most: int | None = None) -> Checkpoint | None:
    """Checkpoints until every row is covered; the last one written (None if none was)."""
    last = None
    while (made := await checkpoint(db, key, most)) is not None:
        last = made
    return last


async def every(db: asyncpg.Pool, key: AuditKey, interval: float) -> None:
    """Writes checkpoints every `interval` seconds while it runs (cancel it to stop). A failure
    is logged by its type and tried again at the next turn: the log itself is not touched."""
    while True:
        await asyncio.sleep(interval)
        try:
            await caught_up(db, key)
        except CheckpointRefused as exc:
            log.error("audit log broken: no checkpoint signed", extra={"event": str(exc.result)})
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.warning("audit checkpoint not written", extra={"event": type(exc).__name__})
