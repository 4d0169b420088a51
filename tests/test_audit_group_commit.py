"""Group commit of stand-alone audit rows (domain/_groupcommit.py, issue 19 item 6): many
writers, one chain; a failed batch leaves none of its rows and tells every caller; two processes
with a batcher each still make one chain; `audit_append_many()` refuses what `audit_append()`
refuses."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import orjson
import pytest
from starlette.applications import Starlette

from api.devissuer import DevIssuer
from domain import checkpoints
from domain.audit import Action, AuditUnavailable, GroupCommit, actor_of, record, verify
from domain.checkpoints import AuditKey
from stores.deployment import Deployment
from stores.pool import create_pool
from tests._pg import new_database
from tests.test_audit import AGENT, TRICKY_ACTOR, TRICKY_PURPOSE, read

CHAIN_LOCK = 7238236170003768436  # audit_append()'s advisory lock
WAIT = 60.0  # no test here may hang the run


@pytest.fixture
async def scratch(pg_server: str, prefix: str) -> str:
    """A migrated service database of this test's own (dropped with the run's databases)."""
    return await new_database(pg_server, f"{prefix}_group_{secrets.token_hex(3)}")


@pytest.fixture
async def pool(scratch: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(scratch, max_size=4)
    yield p
    await p.close()


async def denied(log: GroupCommit | asyncpg.Pool, request_id: str) -> int:
    return await record(
        log,
        request_id=request_id,
        actor=AGENT,
        subject_id=uuid4(),
        action=Action.ACCESS_DENIED,
        outcome="denied",
        purpose={"ticket": "SUP-7"},
        categories=("profile",),
    )


async def test_64_writers_make_one_whole_chain_in_batches(pool: asyncpg.Pool) -> None:
    log = GroupCommit(pool)

    async def writer(w: int) -> list[int]:
        return [await denied(log, f"w{w}-{i}") for i in range(20)]

    async def single(w: int) -> list[int]:
        # One-call appends of the old path, at the same time: they join the same chain.
        return [await denied(pool, f"s{w}-{i}") for i in range(5)]

    done = await asyncio.wait_for(
        asyncio.gather(*(writer(w) for w in range(64)), *(single(w) for w in range(4))), WAIT
    )
    seqs = sorted(itertools.chain.from_iterable(done))
    assert seqs == list(range(1, 64 * 20 + 4 * 5 + 1))
    ids = [r["request_id"] for r in await pool.fetch("SELECT request_id FROM audit_log")]
    assert len(ids) == len(set(ids)) == 64 * 20 + 4 * 5  # every row once
    # Written in batches, not one transaction per row.
    assert log.rows == 64 * 20 and log.batches <= log.rows / 4, (log.batches, log.rows)
    result = await verify(pool, batch=97)
    assert (result.ok, result.checked) == (True, len(seqs)), str(result)
    # A signed checkpoint covers batched rows like any others.
    key = AuditKey(bytes(range(32)))
    assert (await checkpoints.caught_up(pool, key, most=500)) is not None
    assert (await checkpoints.verify(pool, key)).anchored == 3


async def test_a_row_is_written_as_a_single_append_would_write_it(pool: asyncpg.Pool) -> None:
    log = GroupCommit(pool)
    subject = uuid4()
    batched = await read(log, subject, categories=("payment", "profile.email"))
    single = await read(pool, subject, categories=("payment", "profile.email"))
    columns = "actor, subject_id, action, purpose, categories, outcome"
    rows = await pool.fetch(
        f"SELECT {columns} FROM audit_log WHERE seq = any($1::bigint[]) ORDER BY seq",  # noqa: S608  # a constant
        [batched, single],
    )
    assert dict(rows[0]) == dict(rows[1])
    assert rows[0]["actor"] == actor_of(AGENT)
    assert (await verify(pool)).ok


async def test_a_batch_hashes_the_bytes_a_single_append_and_python_hash(
    icu_pool: asyncpg.Pool,
) -> None:
    # A batch computes its rows' text in one query of its own (0022); these keys, values and
    # categories would catch a difference from audit_canonical() or Python's canonical():
    # key order by code point, lengths in bytes, separators and escapes inside values.
    pool = icu_pool
    actor, purpose = TRICKY_ACTOR, TRICKY_PURPOSE
    rows = [
        {
            "request_id": request_id,
            "actor": act,
            "subject_id": subject,
            "action": "subject.read",
            "purpose": purp,
            "categories": categories,
            "outcome": "allowed",
        }
        for request_id, act, subject, purp in [
            ("r", actor, str(uuid4()), purpose),
            ("é:1", {"kind": "anonymous"}, None, {}),
        ]
        for categories in ([], ["profile", "profile.email", "web_analytics"], ["b", "a", "b"])
    ]
    seqs = await pool.fetchval(
        "SELECT audit_append_many($1::text::jsonb)", orjson.dumps(rows).decode()
    )
    assert seqs == list(range(1, len(rows) + 1))
    # Each stored hash is the one audit_canonical() gives for the stored row.
    mismatched = await pool.fetchval(
        """SELECT count(*) FROM audit_log
           WHERE hash <> encode(sha256(convert_to(prev_hash || audit_canonical(
                     seq, at, request_id, actor, subject_id, action, purpose, categories, outcome),
                 'UTF8')), 'hex')"""
    )
    assert mismatched == 0
    result = await verify(pool)  # and the one Python's canonical() gives
    assert (result.ok, result.checked) == (True, len(rows)), str(result)


async def test_a_failed_batch_leaves_none_of_its_rows_and_every_caller_is_told(
    scratch: str, pool: asyncpg.Pool
) -> None:
    log = GroupCommit(pool)
    assert await denied(log, "before") == 1
    owner = await asyncpg.connect(scratch)
    try:
        # The chain's lock held elsewhere: the next batch waits for it, mid-transaction.
        await owner.execute("SELECT pg_advisory_lock($1)", CHAIN_LOCK)
        doomed = [asyncio.create_task(denied(log, f"doomed-{i}")) for i in range(20)]
        pid = None
        for _ in range(500):
            pid = await owner.fetchval(
                """SELECT pid FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock'
                     AND query LIKE '%audit_append_many%'"""
            )
            if pid is not None:
                break
            await asyncio.sleep(0.02)
        assert pid is not None, "the batch never reached the lock"
        later = [asyncio.create_task(denied(log, f"later-{i}")) for i in range(5)]
        # The batch's connection dies in the middle of its transaction.
        assert await owner.fetchval("SELECT pg_terminate_backend($1)", pid)
        await owner.execute("SELECT pg_advisory_unlock($1)", CHAIN_LOCK)
        told = await asyncio.wait_for(asyncio.gather(*doomed, return_exceptions=True), WAIT)
        assert all(isinstance(t, AuditUnavailable) for t in told), told
        # The rows that came while it ran go with the next batch, on a new connection.
        assert sorted(await asyncio.wait_for(asyncio.gather(*later), WAIT)) == [2, 3, 4, 5, 6]
        ids = {r["request_id"] for r in await owner.fetch("SELECT request_id FROM audit_log")}
        assert ids == {"before", *(f"later-{i}" for i in range(5))}
        assert (await verify(owner)).ok
    finally:
        await owner.close()


async def test_a_malformed_row_fails_alone(pool: asyncpg.Pool) -> None:
    log = GroupCommit(pool)
    bad = orjson.dumps({"request_id": "bad", "actor": {"kind": "robot"}, "action": "x.y"})
    told = await asyncio.wait_for(
        asyncio.gather(
            *(denied(log, f"good-{i}") for i in range(5)), log.append(bad), return_exceptions=True
        ),
        WAIT,
    )
    assert isinstance(told[-1], AuditUnavailable)
    assert sorted(t for t in told[:-1] if isinstance(t, int)) == [1, 2, 3, 4, 5]
    assert (await verify(pool)).ok


INSERT_ROW = (
    "INSERT INTO audit_log (seq, request_id, actor, action, outcome, prev_hash, hash) "
    "VALUES ($1, 'r', '{\"kind\": \"support\"}', 'subject.read', 'allowed', "
    "repeat('0', 64), repeat('0', 64))"
)


async def test_the_insert_trigger_lets_in_a_batch_and_nothing_after_it(
    scratch: str, pool: asyncpg.Pool
) -> None:
    log = GroupCommit(pool)
    await asyncio.gather(*(denied(log, f"r-{i}") for i in range(3)))
    owner = await asyncpg.connect(scratch)
    try:
        for settings in [
            # What a batch leaves behind: nothing named.
            'SELECT audit_append_many(\'[{"request_id": "b", "actor": {"kind": '
            '"anonymous"}, "action": "access.denied", "outcome": "denied"}]\')',
            # A run's end without its start.
            "SELECT set_config('dsar.audit_append_last', '100', true)",
            # A start without a run's end: one row only, not the one after it.
            "SELECT set_config('dsar.audit_append', '5', true)",
        ]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="audit_append"):
                async with owner.transaction():
                    await owner.execute(settings)
                    if "set_config('dsar.audit_append', '5'" in settings:
                        await owner.execute(INSERT_ROW, 5)
                    last = await owner.fetchval("SELECT max(seq) FROM audit_log")
                    await owner.execute(INSERT_ROW, last + 1)
        assert await owner.fetchval("SELECT count(*) FROM audit_log") == 3
        assert (await verify(owner)).ok
    finally:
        await owner.close()


async def test_a_closed_batcher_writes_what_waits_and_takes_no_more(pool: asyncpg.Pool) -> None:
    log = GroupCommit(pool)
    waiting = [asyncio.create_task(denied(log, f"w-{i}")) for i in range(3)]
    await asyncio.sleep(0)
    await log.close()
    assert sorted(await asyncio.gather(*waiting)) == [1, 2, 3]
    with pytest.raises(AuditUnavailable):
        await denied(log, "late")


async def test_the_service_role_appends_in_batches(deployment: Deployment) -> None:
    service = await create_pool(deployment.service_dsn, max_size=2)
    try:
        log = GroupCommit(service)
        seqs = await asyncio.wait_for(
            asyncio.gather(*(denied(log, f"svc-{i}") for i in range(10))), WAIT
        )
        assert len(set(seqs)) == 10
        # Still no way in but the functions: the role cannot insert itself.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute("INSERT INTO audit_log (seq) VALUES (0)")
    finally:
        await service.close()


async def test_the_app_writes_a_refusal_through_its_group_commit(
    app: Starlette, client: httpx.AsyncClient, issuer: DevIssuer, owner_db: asyncpg.Pool
) -> None:
    log: GroupCommit = app.state.services.audit
    before = log.rows
    partner = issuer.mint("partner", "partner-group-commit")
    r = await client.post(
        "/graphql", json={"query": "{ me { id } }"}, headers={"Authorization": f"Bearer {partner}"}
    )
    assert [e["extensions"]["code"] for e in r.json()["errors"]] == ["INSUFFICIENT_SCOPE"]
    assert log.rows == before + 1
    row = await owner_db.fetchrow(
        "SELECT action, outcome, actor->>'client_id' AS client FROM audit_log "
        "WHERE request_id = $1",
        r.headers["x-request-id"],
    )
    assert row is not None
    assert (row["action"], row["outcome"]) == ("access.denied", "denied")
    assert row["client"] == "partner-group-commit"


# One process of the cross-process test: its own pool and batcher, 16 writers; it waits for the
# word on stdin so that both processes write at the same time.
_WRITER = """
import asyncio, sys
from domain.audit import Action, GroupCommit, record
from stores.pool import create_pool

async def main(dsn, tag):
    pool = await create_pool(dsn, max_size=2)
    log = GroupCommit(pool)
    await pool.fetchval("SELECT 1")
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    async def writer(w):
        for i in range(40):
            await record(log, request_id=f"{tag}-{w}-{i}", actor=None, subject_id=None,
                         action=Action.ACCESS_DENIED, outcome="denied")

    await asyncio.gather(*(writer(w) for w in range(16)))
    print(log.batches, flush=True)
    await pool.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_with_a_batcher_each_make_one_chain(
    scratch: str, repo_root: Path
) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRITER,
            scratch,
            tag,
            cwd=repo_root,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for tag in ("a", "b")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert await asyncio.wait_for(p.stdout.readline(), WAIT) == b"ready\n"
        outs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate(b"go\n") for p in procs)), WAIT
        )
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert [p.returncode for p in procs] == [0, 0]
    batches = [int(out.split()[-1]) for out, _ in outs]
    conn = await asyncpg.connect(scratch)
    try:
        rows = await conn.fetch("SELECT seq, request_id FROM audit_log ORDER BY seq")
        result = await verify(conn)
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == list(range(1, 2 * 16 * 40 + 1))
    assert len({r["request_id"] for r in rows}) == len(rows)
    assert (result.ok, result.checked) == (True, len(rows)), str(result)
    # Both batched, and their batches took turns on the one chain.
    assert all(b < 16 * 40 for b in batches), batches
    turns = [k for k, _ in itertools.groupby(r["request_id"][0] for r in rows)]
    assert len(turns) > 2, turns


# Rows audit_append() refuses, with the SQLSTATE it refuses them with.
BAD = [
    {"request_id": ""},
    {"request_id": "r" * 201},
    {"action": "Subject.Read"},
    {"actor": {"kind": "robot"}},
    {"actor": {"iss": "x"}},
    {"categories": ["Profile"]},
    {"categories": ["alice@example.com"]},
    {"purpose": {"ticket": 7}},
    {"actor": {"kind": "support", "nested": {"a": "b"}}},
    {"actor": {"kind": "support", "sub": None}},
    {"purpose": {"ticket": None}},
    {"purpose": ["ticket"]},
    {"purpose": "ticket"},
]


@pytest.mark.parametrize("change", BAD)
async def test_a_batch_refuses_what_a_single_append_refuses(
    owner_db: asyncpg.Pool, change: dict[str, object]
) -> None:
    row: dict[str, object] = {
        "request_id": "req-1",
        "actor": {"kind": "support", "iss": "https://idp.test", "sub": "agent"},
        "subject_id": str(uuid4()),
        "action": "subject.read",
        "purpose": {"ticket": "SUP-1"},
        "categories": ["profile"],
        "outcome": "allowed",
        **change,
    }
    states = []
    async with owner_db.acquire() as conn:
        for sql, args in [
            (
                "SELECT audit_append($1, $2::text::jsonb, $3::uuid, $4, $5::text::jsonb, $6, $7)",
                [
                    row["request_id"],
                    orjson.dumps(row["actor"]).decode(),
                    row["subject_id"],
                    row["action"],
                    orjson.dumps(row["purpose"]).decode(),
                    row["categories"],
                    row["outcome"],
                ],
            ),
            ("SELECT audit_append_many($1::text::jsonb)", [orjson.dumps([row]).decode()]),
        ]:
            tx = conn.transaction()
            await tx.start()
            try:
                with pytest.raises(asyncpg.PostgresError) as refused:
                    await conn.fetchval(sql, *args)
                states.append(refused.value.sqlstate)
            finally:
                await tx.rollback()
    assert states[0] == states[1], states
