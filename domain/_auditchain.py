"""The audit log's hash chain, recomputed in Python: the same bytes the database hashes.

`canonical()` mirrors `audit_canonical()` of stores/migrations/service/0002_audit.sql exactly;
tests/test_audit.py holds the two side by side. Each field is self-delimiting (its UTF-8 length,
':' and itself, or '-' for NULL), so no value can pass for two and nothing needs escaping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from stores.scope import Scope, bind

GENESIS = "0" * 64

Problem = Literal["gap", "prev_hash", "hash", "malformed", "missing", "rewritten", "checkpoint"]

_WHY: dict[Problem, str] = {
    "gap": "this row is missing (rows were deleted)",
    "prev_hash": "prev_hash does not match the hash of the row before",
    "hash": "hash does not match the row",
    "malformed": "row is malformed",
    "missing": "this row and those after it are missing",
    "rewritten": "differs from the signed checkpoint",
    "checkpoint": "checkpoint",
}


class Malformed(ValueError):
    """A row the database's function could never have written (e.g. a nested actor)."""


def _field(value: str | None) -> str:
    return "-" if value is None else f"{len(value.encode())}:{value}"


def _map(value: object) -> str:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Malformed("a map must be a flat object of strings")
    # Python sorts str by code point; PostgreSQL's COLLATE "C" by UTF-8 bytes: the same order.
    return f"M{len(value)}:" + "".join(_field(k) + _field(v) for k, v in sorted(value.items()))


def _time(at: datetime) -> str:
    # isoformat pads the year to four digits, like to_char's YYYY.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(
    *,
    seq: int,
    at: datetime,
    request_id: str,
    actor: object,
    subject_id: str | None,
    action: str,
    purpose: object,
    categories: Sequence[str | None],
    outcome: str,
) -> str:
    return (
        "v1;"
        + _field(str(seq))
        + _field(_time(at))
        + _field(request_id)
        + _map(actor)
        + _field(subject_id)
        + _field(action)
        + _map(purpose)
        + f"L{len(categories)}:"
        + "".join(_field(c) for c in categories)
        + _field(outcome)
    )


def chain_hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The chain is whole (`broken_seq` is None) or breaks first at `broken_seq`.

    `checked` counts the rows read, the broken one included; `head` is the hash of the last
    good row; `anchored` counts the signed checkpoints the rows were checked against
    (domain/checkpoints.py); `detail` says more where a problem needs it.
    """

    checked: int
    head: str
    broken_seq: int | None = None
    problem: Problem | None = None
    anchored: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    def __str__(self) -> str:
        if self.problem is None:
            anchored = ""
            if self.anchored:
                plural = "s" * (self.anchored != 1)
                anchored = f", checked against {self.anchored} signed checkpoint{plural}"
            return f"audit log whole: {self.checked} rows checked, head {self.head}{anchored}"
        detail = f" {self.detail}" if self.detail else ""
        if self.problem == "checkpoint":
            return f"audit log broken at seq {self.broken_seq}: checkpoint{detail}"
        return f"audit log broken at seq {self.broken_seq}: {_WHY[self.problem]}{detail}"


_COLUMNS = """seq, at, request_id, actor::text AS actor, subject_id::text AS subject_id,
              action, purpose::text AS purpose, categories, outcome, prev_hash, hash"""
_ROWS = f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq"  # noqa: S608  # constants
# The rows after a checkpoint's seq, in order, at most $2 of them.
ROWS_AFTER = f"SELECT {_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"  # noqa: S608


def _problem(row: asyncpg.Record, expected_seq: int, prev_hash: str) -> Problem | None:
    if row["seq"] != expected_seq:
        return "gap"
    if row["prev_hash"] != prev_hash:
        return "prev_hash"
    try:
        text = canonical(
            seq=row["seq"],
            at=row["at"],
            request_id=row["request_id"],
            actor=orjson.loads(row["actor"]),
            subject_id=row["subject_id"],
            action=row["action"],
            purpose=orjson.loads(row["purpose"]),
            categories=row["categories"],
            outcome=row["outcome"],
        )
    except Malformed:
        return "malformed"
    return None if chain_hash(prev_hash, text) == row["hash"] else "hash"


async def verify_on(
    conn: asyncpg.Connection | PoolConnectionProxy, *, batch: int = 1000
) -> VerifyResult:
    """Streams the log in seq order through a cursor: memory stays flat whatever its length."""
    if conn.is_in_transaction():  # the caller's transaction, and its snapshot, are kept
        return await walk(conn, batch)
    # One snapshot for the whole walk: rows appended meanwhile are left for the next run.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await walk(conn, batch)


def check_rows(
    rows: Sequence[asyncpg.Record], after_seq: int, after_hash: str
) -> VerifyResult | None:
    """The first problem of `rows`, which should continue the chain after row `after_seq`."""
    head = after_hash
    for n, row in enumerate(rows, start=1):
        problem = _problem(row, after_seq + n, head)
        if problem is not None:
            return VerifyResult(n, head, after_seq + n if problem == "gap" else row["seq"], problem)
        head = row["hash"]
    return None


class Anchor(Protocol):
    """A signed checkpoint, as the walk needs it (domain/checkpoints.py)."""

    @property
    def seq(self) -> int: ...

    def covers(self, seq: int) -> bool: ...

    def hash_of(self, seq: int) -> str: ...


async def walk(
    conn: asyncpg.Connection | PoolConnectionProxy, batch: int, anchors: Sequence[Anchor] = ()
) -> VerifyResult:
    """The rows in seq order against the chain and, where a checkpoint covers them, against
    the hashes it signed (`anchors`, in seq order, each continuing the one before)."""
    await bind(conn, scope=Scope.AUDIT)  # every row, whoever it is about
    checked, head = 0, GENESIS
    pending = list(reversed(anchors))
    async for row in conn.cursor(_ROWS, prefetch=batch):
        checked += 1
        problem = _problem(row, checked, head)
        if problem is not None:
            # A gap names the first row that is not there; anything else, the row itself.
            seq = checked if problem == "gap" else row["seq"]
            return VerifyResult(checked, head, seq, problem, len(anchors))
        while pending and pending[-1].seq < row["seq"]:
            pending.pop()
        if pending and pending[-1].covers(row["seq"]):
            if pending[-1].hash_of(row["seq"]) != row["hash"]:
                detail = (
                    f"of seq {pending[-1].seq}: this row was rewritten, or rows were removed "
                    "or put in before it"
                )
                return VerifyResult(checked, head, row["seq"], "rewritten", len(anchors), detail)
        head = row["hash"]
    if anchors and anchors[-1].seq > checked:
        detail = f"(a signed checkpoint holds rows up to seq {anchors[-1].seq})"
        return VerifyResult(checked, head, checked + 1, "missing", len(anchors), detail)
    return VerifyResult(checked, head, anchored=len(anchors))
