"""One download of an export: who may have it, its audit row, its lease, and how it ends.

The bundle is built from the stores while it is sent: counted and hashed on the way, so the
export row ends with the size and SHA-256 of exactly the bytes that left. A store that fails
half way ends the stream before the ZIP's central directory: the client holds a file no
reader takes for a whole bundle, and the row says `failed` with a reason that holds no data.
The HTTP edge (`api/downloads.py`) only parses the request and sends what `start` returns.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import anyio
import asyncpg
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from domain import audit, disclosures, exports, partners, portability, requests
from domain.audit import Action
from domain.errors import AuditUnavailable, Busy, Gone, NotFound, Overloaded, StepUpRequired
from domain.exports import Conn, ExportRow
from domain.leases import Leases
from domain.own_records import DESCRIPTIONS, own_records
from domain.principals import Customer, Partner, Principal
from domain.services import Services
from domain.stepup import require_strong_login
from exporters import EXPORTERS, build_bundle, jwe
from exporters.facts import PersonFacts, Release
from stores.scope import scoped

tracer = trace.get_tracer("dsar.exports")
log = logging.getLogger("dsar.exports")


class ExportBusy(Busy):
    """Another export of the same subject is streaming right now."""


INTERRUPTED = "The download stopped before the bundle was complete."
STORE_FAILED = "A data store failed while the bundle was streaming."
# How a download ended, as its closing audit row says.
COMPLETE = "complete"
ENDINGS = {INTERRUPTED: "interrupted", STORE_FAILED: "store_failed"}


async def start(
    services: Services, principal: Principal, export_id: UUID, request_id: str = "-"
) -> Download:
    """A download that may begin now, its audit row written and its lease held.

    Raises `NotFound` (missing, or someone else's: either attempt is recorded, alike in the
    work it costs), `StepUpRequired`, `Gone` (spent or expired, saying nothing of which),
    `AuditUnavailable` (nothing leaves), `ExportBusy` (another stream of the same person runs)
    or `Overloaded` (no turn came free in time); every refusal is recorded with why."""
    db = services.db
    row = await exports.get(db, export_id)
    if row is None:
        # The same work as "someone else's" below (one denied row through the audit log), so
        # the two cannot be told apart by how long the 404 takes: the insert was most of it.
        await audit.denied(
            services.audit,
            request_id=request_id,
            actor=principal,
            subject_id=None,
            action=Action.EXPORT_DOWNLOAD,
            purpose={"export_id": str(export_id), "refusal": NOT_FOUND},
        )
        raise NotFound
    allowed = exports.may_download(principal, row)
    if allowed and isinstance(principal, Partner):
        # The grant is read on every request: a revocation holds whatever the token says.
        allowed = (
            row.grant_id is not None
            and await portability.live_grant(db, principal, row.grant_id) is not None
        )
    if not allowed:
        await _refused(services.audit, principal, row, request_id, NOT_YOURS)
        raise NotFound
    if isinstance(principal, Customer):
        rules = services.rules
        try:
            require_strong_login(principal, rules.step_up_acr_values, rules.step_up_max_age)
        except StepUpRequired:
            await _refused(services.audit, principal, row, request_id, STEP_UP)
            raise
    key = None
    if isinstance(principal, Partner):
        key = await partners.partner_key(db, principal.client_id)
    facts, ref, release = None, None, None
    service: dict[str, list[dict[str, Any]]] = {}
    if isinstance(principal, Partner):
        # A partner's bundle names the person by that partner's pairwise reference only.
        ref = portability.subject_ref(
            services.rules.secret_key, principal.client_id, row.subject_id
        )
    # Its turn first, before any byte: past the wait, a 503 before the headers rather than a
    # 200 cut off when a store's pool has no connection left for it (domain/turns.py).
    try:
        await services.turns.take()
    except Overloaded:
        await _refused(services.audit, principal, row, request_id, OVERLOADED)
        raise
    try:
        if ref is None:
            # Whose law applies (settled now) and what reached whom in the 12 months before
            # the request: said in the person's own copy.
            facts = await disclosures.person_facts(
                services.stores, db, services.catalogue, row.subject_id, row.created_at
            )
            release = disclosures.release_for(
                services.catalogue,
                facts,
                row.purpose,
                row.verification,
                by_person=row.requested_by.get("kind") == "customer",
            )
            service = await own_records(db, row.subject_id)
        claimed = await claim(
            db, services.leases, row, principal, request_id, audit_log=services.audit
        )
    except BaseException:
        services.turns.give_back()
        raise
    download = Download(services, claimed, key, principal=principal, request_id=request_id)
    download.facts, download.subject_ref, download.release = facts, ref, release
    download.service = service
    return download


# Why a download was refused, as its audit row says (fixed words, never data).
NOT_YOURS = "not_yours"
NOT_FOUND = "not_found"
STEP_UP = "step_up"
BUSY = "busy"
GONE = "gone"
OVERLOADED = "overloaded"


async def _refused(
    audit_log: audit.GroupCommit, principal: Principal, row: ExportRow, request_id: str, why: str
) -> None:
    """A refused download: recorded as denied, with why (a row of its own, group-committed).
    The refusal stands either way."""
    await audit.denied(
        audit_log,
        request_id=request_id,
        actor=principal,
        subject_id=row.subject_id,
        action=_action(row),
        purpose={**_purpose(row), "refusal": why},
        categories=row.categories,
    )


def _action(row: ExportRow) -> Action:
    return Action.TRANSFER_DOWNLOAD if row.grant_id else Action.EXPORT_DOWNLOAD


def _sent(row: ExportRow) -> Action:
    return Action.TRANSFER_SENT if row.grant_id else Action.EXPORT_SENT


def _purpose(row: ExportRow) -> dict[str, str]:
    purpose = exports.export_purpose(row)
    if row.grant_id is not None:
        purpose["grant_id"] = str(row.grant_id)
    return purpose


async def claim(
    db: asyncpg.Pool,
    leases: Leases,
    row: ExportRow,
    principal: Principal,
    request_id: str = "-",
    *,
    audit_log: audit.GroupCommit,
) -> ExportRow:
    """Takes the running lease for one download (the caller releases it when the stream ends)
    and marks the row running, committed with the download's `allowed` audit row. A download
    that may not begin is audited as refused, with why: `ExportBusy` when another stream of
    the same subject runs (the unique index allows one running export per subject), `Gone`
    when the link is spent or expired (the database's clock judges)."""
    # Before the row says running, so it is never seen orphaned.
    if not await leases.hold(row.id):
        await _refused(audit_log, principal, row, request_id, BUSY)
        raise ExportBusy
    try:
        return await _claim(db, row, principal, request_id)
    except (ExportBusy, Gone) as exc:
        await leases.release(row.id)
        await _refused(
            audit_log, principal, row, request_id, BUSY if isinstance(exc, Busy) else GONE
        )
        raise
    except BaseException:
        await leases.release(row.id)
        raise


async def _claim(
    db: asyncpg.Pool, row: ExportRow, principal: Principal, request_id: str
) -> ExportRow:
    async with scoped(db, subject=row.subject_id) as conn:
        await exports.fail_stale(conn, row.subject_id)
        try:
            # A savepoint: the unique index's refusal leaves the transaction usable.
            async with conn.transaction():
                # The database's clock judges the expiry, as everywhere.
                claimed = await conn.fetchrow(
                    f"""UPDATE exports
                        SET status = 'running', started_at = now(), heartbeat_at = now(),
                            failure = NULL, downloads = downloads + 1, sent_bytes = 0
                        WHERE id = $1 AND status = any($2::text[])
                          AND full_sends < downloads_allowed AND expires_at > now()
                        RETURNING {exports.ROW}""",  # noqa: S608  # a constant, no input
                    row.id,
                    list(exports.DOWNLOADABLE),
                )
        except asyncpg.UniqueViolationError:
            raise ExportBusy from None
        if claimed is None:
            running = await conn.fetchval(
                "SELECT status = 'running' FROM exports WHERE id = $1", row.id
            )
            raise ExportBusy if running else Gone
        # Written with the claim, before a byte leaves: no row, no download.
        await audit.record(
            conn,
            request_id=request_id,
            actor=principal,
            subject_id=row.subject_id,
            action=_action(row),
            outcome="allowed",
            purpose=_purpose(row),
            categories=row.categories,
        )
    return ExportRow.of(claimed)


async def complete(
    db: asyncpg.Pool | Conn,
    export_id: UUID,
    *,
    records: int,
    size: int,
    sha256: str,
    generated_at: datetime,
) -> None:
    await db.execute(
        """UPDATE exports SET status = 'completed', records = $2, bytes = $3, sha256 = $4,
                              generated_at = $5, finished_at = now(), heartbeat_at = NULL,
                              full_sends = full_sends + 1, sent_bytes = $3
           WHERE id = $1""",
        export_id,
        records,
        size,
        sha256,
        generated_at,
    )


async def fail(db: asyncpg.Pool | Conn, export_id: UUID, reason: str, sent: int = 0) -> None:
    """`reason` is fixed text chosen by the caller: never an exception message. The link
    serves again: the client did not have the whole bundle."""
    await db.execute(
        """UPDATE exports SET status = 'failed', failure = $2, finished_at = now(),
                              heartbeat_at = NULL, sent_bytes = $3
           WHERE id = $1""",
        export_id,
        reason,
        sent,
    )


class Download:
    """One claimed download: the bundle (encrypted to `encrypt_to` when given), counted and
    hashed as it leaves; the row ends completed or failed, and the lease is released.

    The edge sends `chunks()` and calls `close()` once, whatever happened to the response: a
    client that goes away before the first byte leaves the stream unstarted, and the export
    must still be failed and its lease released."""

    def __init__(
        self,
        services: Services,
        row: ExportRow,
        encrypt_to: dict[str, Any] | None = None,
        *,
        principal: Principal,
        request_id: str = "-",
    ) -> None:
        self.services = services
        self.row = row
        self.encrypt_to = encrypt_to
        self.facts: PersonFacts | None = None
        self.subject_ref: str | None = None
        self.release: Release | None = None
        self.service: dict[str, list[dict[str, Any]]] = {}
        self.principal = principal
        self.request_id = request_id
        self.sent = 0
        self.started = False
        self.ended = False
        self._chunks: AsyncGenerator[bytes, None] | None = None

    @property
    def filename(self) -> str:
        stamp = self.row.created_at.strftime("%Y%m%d")
        name = f"personal-data-{stamp}-{EXPORTERS[self.row.format].name}-{self.row.id.hex[:8]}.zip"
        # Readable only with the partner's private key.
        return name + ".jwe" if self.encrypt_to is not None else name

    @property
    def media_type(self) -> str:
        return jwe.MEDIA_TYPE if self.encrypt_to is not None else "application/zip"

    def chunks(self) -> AsyncGenerator[bytes, None]:
        self._chunks = self._run()
        return self._chunks

    async def close(self) -> None:
        if self._chunks is not None and self.started:
            await self._chunks.aclose()  # runs `_run`'s own ending, if it has not run yet
        if not self.ended:  # never started: nothing left, and nothing was recorded
            await self._end(None, INTERRUPTED)

    async def _end(self, done: tuple[int, int, str, datetime] | None, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            await self._record_end(done, reason)
        finally:
            self.services.turns.give_back()
            await self.services.leases.release(self.row.id)

    async def _record_end(self, done: tuple[int, int, str, datetime] | None, reason: str) -> None:
        """The row and the audit log say what was sent: how many bytes were handed to the
        connection, and whether that was the whole bundle. Whether the client received them
        no server can know (the last chunks may sit in a socket buffer)."""
        db = self.services.db
        row = self.row
        ending = ENDINGS[reason] if done is None else COMPLETE
        purpose = {**_purpose(row), "ending": ending, "sent_bytes": str(self.sent)}
        try:
            async with scoped(db, subject=row.subject_id) as conn:
                await self._update(conn, done, reason)
                await audit.record(
                    conn,
                    request_id=self.request_id,
                    actor=self.principal,
                    subject_id=row.subject_id,
                    action=_sent(row),
                    outcome="allowed" if done is not None else "failed",
                    purpose=purpose,
                    categories=row.categories,
                )
                if done is not None:
                    # The whole copy left: its request is answered.
                    await requests.complete_export(conn, row.id, self.request_id)
        except AuditUnavailable:
            # The bytes are gone already: the row must still say so, without its audit row.
            log.warning("download end not audited", extra={"event": str(row.id)})
            async with scoped(db, subject=row.subject_id) as conn:
                await self._update(conn, done, reason)

    async def _update(
        self, db: asyncpg.Pool | Conn, done: tuple[int, int, str, datetime] | None, reason: str
    ) -> None:
        if done is not None:
            records, size, sha256, generated_at = done
            await complete(
                db,
                self.row.id,
                records=records,
                size=size,
                sha256=sha256,
                generated_at=generated_at,
            )
        else:
            await fail(db, self.row.id, reason, self.sent)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        self.started = True
        row = self.row
        digest = hashlib.sha256()
        size = 0
        counts: dict[str, int] = {}
        reason = INTERRUPTED
        done = None
        # The database's clock, as the claim read it: the next delta transfer starts here.
        generated_at = row.started_at or datetime.now(UTC)
        # Its slices give way to small requests (domain/budget.py); it still ends whole.
        pacer = self.services.budget.stream()
        chunks: AsyncGenerator[bytes, None] = build_bundle(
            self.services.stores,
            self.services.catalogue,
            row.subject_id,
            format=row.format,
            purpose=row.purpose,
            categories=row.categories,
            export_id=row.id,
            generated_at=generated_at,
            counts=counts,
            since=row.since,
            facts=self.facts,
            subject_ref=self.subject_ref,
            release=self.release,
            service=self.service,
            service_descriptions=DESCRIPTIONS,
            pace=pacer.pace,
            pace_beside=pacer.beside,
            rest=pacer.rest,
        )
        if self.encrypt_to is not None:
            chunks = jwe.encrypt_stream(chunks, self.encrypt_to, "application/zip")
        # Not made current: the span lives across this generator's yields. Ids, counts, sizes.
        span = tracer.start_span(
            "export stream",
            attributes={
                "dsar.export_id": str(row.id),
                "dsar.format": row.format,
                "dsar.purpose": row.purpose,
                "dsar.categories": len(row.categories or ()),
                "dsar.encrypted": self.encrypt_to is not None,
            },
        )
        try:
            async with aclosing(chunks):
                # The bundle paces its own work, and rests while a chunk waits on the client's
                # network (`rest`): its pace points all run in its reading's task.
                async for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk
                    self.sent = size  # handed to the connection
            done = (sum(counts.values()), size, digest.hexdigest(), generated_at)
        except Exception as exc:
            reason = STORE_FAILED
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            log.error("export failed", extra={"error": type(exc).__name__, "event": str(row.id)})
            raise
        finally:
            pacer.close()
            span.set_attribute("dsar.records", sum(counts.values()))
            span.set_attribute("dsar.bytes", size)
            span.end()
            # Shielded: a client that went away cancels this generator, and the row must still
            # say what happened to it.
            with anyio.CancelScope(shield=True):
                await self._end(done, reason)
