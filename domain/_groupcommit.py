"""Group commit for stand-alone audit rows (issue 19, item 6).

An append that is not part of a change of its own (a refused attempt, a support agent's look, a
refused download) used to be a transaction of its own, and every such transaction in the company
queued for the chain's one lock: about a thousand a second. Here the appends that arrive while
a batch is being written wait for the next one, which writes them all with one call of
`audit_append_many()` (stores/migrations/service/0018_audit_group_commit.sql, 0019): one
transaction, one lock, one INSERT, one commit. Under load batches grow by themselves; alone, a
row is written at once.

What this keeps:
- The row is written before the data leaves: `append()` returns a row's seq only once the
  transaction holding it has committed. When the batch fails (the database is gone, the
  connection was cut, the statement timed out) every caller of that batch gets
  `AuditUnavailable`, and no row of it is in the log: it was one transaction. A commit whose
  outcome is unknown is reported as a failure: a row may then exist for data that never left,
  never the reverse.
- One chain across processes: nothing here is needed for correctness. Each process batches its
  own callers; the database's lock orders the batches of all processes and each batch reads the
  tail of the chain under it.
- A malformed row cannot cost the others their rows: a batch refused as data (SQLSTATE class 22)
  is retried one row at a time, and only the bad row fails.
- No personal data in logs: a failure is logged as its exception type and the batch's size.
- Row-level security as before: like `record()` on a pool, the batch's transaction binds no
  subject and no scope (stores/scope.py); it reads nothing, and the rows are written by the
  SECURITY DEFINER function, as the owner.

Rows written in the transaction of a change (a grant, a transfer, an export request) do not come
here: they call `audit_append()` in that transaction, so the change and its row commit together.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from domain.errors import AuditUnavailable

log = logging.getLogger("dsar.audit")

_FAILURES = (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
_APPEND = "SELECT audit_append_many($1::text::jsonb)"


class GroupCommit:
    """Appends rows to the audit log in batches, one batch in flight per process.

    `db` is a pool of the service database: one of its connections is taken for each batch.
    The app gives it a pool of its own, so callers that hold connections of the main pool
    while they wait (a support look holds its agent's lock) can never starve it.
    """

    def __init__(self, db: asyncpg.Pool, *, max_batch: int = 500, timeout: float = 10.0) -> None:
        self._db = db
        self._max = max_batch
        self._timeout = timeout
        self._waiting: list[tuple[bytes, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        # Batches and rows committed so far (the benchmark reports rows per batch).
        self.batches = 0
        self.rows = 0

    async def append(self, row: bytes) -> int:
        """Writes `row` (one row as `audit_append_many` takes it, JSON) with the next batch and
        returns its seq once committed; raises `AuditUnavailable` when it was not written."""
        if self._closed:
            raise AuditUnavailable("closed")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        try:
            # A caller that gives up stops waiting; a row not yet sent is then not written.
            return await asyncio.wait_for(done, self._timeout)
        except TimeoutError:
            raise AuditUnavailable("TimeoutError") from None

    async def close(self) -> None:
        """Writes what is waiting, then takes no more rows."""
        self._closed = True
        if self._writer is not None:
            await self._writer

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
                batch = [(row, done) for row, done in batch if not done.done()]
                if batch:
                    await self._write(batch)
        except BaseException:
            # Cancelled (the loop is closing): what waits is not written, and is told so now.
            waiting, self._waiting = self._waiting, []
            self._fail(waiting, "not written")
            raise

    async def _write(self, batch: list[tuple[bytes, asyncio.Future[int]]]) -> None:
        try:
            try:
                seqs = await self._db.fetchval(
                    _APPEND,
                    (b"[" + b",".join(row for row, _ in batch) + b"]").decode(),
                    timeout=self._timeout,
                )
            except asyncpg.DataError:
                if len(batch) == 1:
                    raise
                # One bad row refuses the whole statement: write each alone, so only it fails.
                for one in batch:
                    await self._write([one])
                return
            if not isinstance(seqs, list) or len(seqs) != len(batch):
                raise AuditUnavailable("no seqs returned")
            self.batches += 1
            self.rows += len(batch)
            for (_, done), seq in zip(batch, seqs, strict=True):
                if not done.done():
                    done.set_result(seq)
        except (*_FAILURES, AuditUnavailable) as exc:
            log.warning(
                "audit batch not written",
                extra={"error": type(exc).__name__, "event": str(len(batch))},
            )
            self._fail(batch, type(exc).__name__)
        finally:
            # Whatever else happened (a cancellation), no caller is left waiting, nor told
            # its row was written when it was not.
            self._fail(batch, "not written")

    @staticmethod
    def _fail(batch: list[tuple[bytes, asyncio.Future[int]]], why: str) -> None:
        for _, done in batch:
            if not done.done():
                done.set_exception(AuditUnavailable(why))
