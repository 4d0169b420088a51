"""The audit log anchored by signed checkpoints (issue 18, item 4): whoever owns the database
can cut the log short, rewrite a stretch and recompute every hash, delete or put in a row;
`verify` names the first row each time. Rows go in only through `audit_append()`."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from uuid import uuid4

import asyncpg
import orjson
import pytest

from api.app import create_app
from api.settings import Settings
from domain import checkpoints
from domain.audit import canonical, chain_hash
from domain.audit import verify as verify_chain
from domain.checkpoints import AuditKey, Checkpoint, CheckpointRefused
from stores.config import with_database
from stores.deployment import Deployment
from stores.pool import create_pool
from stores.registry import Stores
from tests._cli import run_cli
from tests._pg import new_database
from tests.test_audit import read, tamper

KEY = AuditKey(bytes(range(32)))
OTHER = AuditKey(bytes(range(1, 33)))


@pytest.fixture
async def scratch(pg_server: str, prefix: str) -> str:
    """A migrated service database of this test's own (as its owner); the run's databases are
    dropped at its end (tests/conftest.py)."""
    return await new_database(pg_server, f"{prefix}_anchor_{secrets.token_hex(3)}")


@pytest.fixture
async def pool(scratch: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(scratch)
    yield p
    await p.close()


async def rows(pool: asyncpg.Pool, n: int) -> None:
    for _ in range(n):
        await read(pool, uuid4())


async def rehash(dsn: str, start: int) -> None:
    """What an owner who knows the chain does after an edit: every hash from `start` on
    recomputed, so the chain alone holds again."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            prev = await conn.fetchval("SELECT hash FROM audit_log WHERE seq = $1", start - 1)
            prev = prev or "0" * 64
            for r in await conn.fetch(
                "SELECT seq, at, request_id, actor::text, subject_id::text, action, "
                "purpose::text, categories, outcome FROM audit_log WHERE seq >= $1 ORDER BY seq",
                start,
            ):
                text = canonical(
                    seq=r["seq"],
                    at=r["at"],
                    request_id=r["request_id"],
                    actor=orjson.loads(r["actor"]),
                    subject_id=r["subject_id"],
                    action=r["action"],
                    purpose=orjson.loads(r["purpose"]),
                    categories=r["categories"],
                    outcome=r["outcome"],
                )
                new = chain_hash(prev, text)
                await conn.execute(
                    "UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE seq = $1",
                    r["seq"],
                    prev,
                    new,
                )
                prev = new
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    finally:
        await conn.close()


async def tamper_checkpoints(dsn: str, statement: str) -> None:
    """The owner, behind the checkpoints' triggers."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
            await conn.execute(statement)
            await conn.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")
    finally:
        await conn.close()


# Moves rows from `$1` on by `$2` places (two steps, so the primary key never collides).
SHIFT = [
    "UPDATE audit_log SET seq = -seq WHERE seq >= {start}",
    "UPDATE audit_log SET seq = -seq + ({by}) WHERE seq < 0",
]


def shift(start: int, by: int) -> list[str]:
    return [s.format(start=start, by=by) for s in SHIFT]


async def test_a_direct_insert_is_refused_even_for_the_owner(pool: asyncpg.Pool) -> None:
    await rows(pool, 2)
    head = await pool.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    insert = (
        "INSERT INTO audit_log (seq, request_id, actor, action, outcome, prev_hash, hash) "
        "VALUES (3, 'r', '{\"kind\": \"support\"}', 'subject.read', 'allowed', $1, $2)"
    )
    # `pool` connects as the owner (a superuser here): the trigger refuses it all the same.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="audit_append"):
        await pool.execute(insert, head["hash"], "a" * 64)
    # The setting the function leaves names one row: another row does not pass with it.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('dsar.audit_append', '3:' || repeat('b', 64), true)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(insert, head["hash"], "a" * 64)
    await rows(pool, 1)  # the function's own path still appends
    assert (await verify_chain(pool)).checked == 3


async def test_rows_cut_off_the_end_are_named(scratch: str, pool: asyncpg.Pool) -> None:
    await rows(pool, 5)
    cp = await checkpoints.checkpoint(pool, KEY)
    assert cp is not None and (cp.prev_seq, cp.seq) == (0, 5)
    await rows(pool, 2)
    assert await checkpoints.checkpoint(pool, KEY) is not None
    assert (await checkpoints.verify(pool, KEY)).ok
    await tamper(scratch, "DELETE FROM audit_log WHERE seq >= 4")
    # The chain alone still holds: nothing in the rows that are left shows the cut.
    assert (await verify_chain(pool)).ok
    result = await checkpoints.verify(pool, KEY)
    assert (result.broken_seq, result.problem) == (4, "missing")
    assert str(result) == (
        "audit log broken at seq 4: this row and those after it are missing "
        "(a signed checkpoint holds rows up to seq 7)"
    )


async def test_a_rewritten_stretch_with_recomputed_hashes_is_named(
    scratch: str, pool: asyncpg.Pool
) -> None:
    await rows(pool, 6)
    await checkpoints.checkpoint(pool, KEY)
    await tamper(scratch, "UPDATE audit_log SET outcome = 'denied' WHERE seq IN (3, 4)")
    await rehash(scratch, 3)
    assert (await verify_chain(pool)).ok
    result = await checkpoints.verify(pool, KEY)
    assert (result.broken_seq, result.problem) == (3, "rewritten")
    assert str(result).startswith(
        "audit log broken at seq 3: differs from the signed checkpoint of seq 6"
    )


@pytest.mark.parametrize("hidden", [False, True])
async def test_a_deleted_middle_row_is_named(
    scratch: str, pool: asyncpg.Pool, hidden: bool
) -> None:
    await rows(pool, 6)
    await checkpoints.checkpoint(pool, KEY)
    await tamper(scratch, "DELETE FROM audit_log WHERE seq = 3", *(shift(4, -1) if hidden else []))
    if hidden:  # the rows after it renumbered and rehashed: the chain alone holds again
        await rehash(scratch, 3)
        assert (await verify_chain(pool)).ok
    result = await checkpoints.verify(pool, KEY)
    assert (result.broken_seq, result.problem) == (3, "rewritten" if hidden else "gap")


async def test_a_row_put_in_the_middle_is_named(scratch: str, pool: asyncpg.Pool) -> None:
    await rows(pool, 6)
    await checkpoints.checkpoint(pool, KEY)
    await tamper(
        scratch,
        *shift(4, 1),
        "INSERT INTO audit_log (seq, at, request_id, actor, action, outcome, prev_hash, hash) "
        "SELECT 4, at, 'forged', '{\"kind\": \"support\"}', 'subject.read', 'allowed', hash, hash "
        "FROM audit_log WHERE seq = 3",
    )
    await rehash(scratch, 4)
    assert (await verify_chain(pool)).ok
    result = await checkpoints.verify(pool, KEY)
    assert (result.broken_seq, result.problem) == (4, "rewritten")


async def test_checkpoints_deleted_in_the_database_are_caught_by_the_copies_kept_outside(
    scratch: str, pool: asyncpg.Pool
) -> None:
    await rows(pool, 3)
    await checkpoints.checkpoint(pool, KEY)
    await rows(pool, 3)
    await checkpoints.checkpoint(pool, KEY)
    kept = [
        Checkpoint.from_json(json.loads(json.dumps(c.to_json())))
        for c in await checkpoints.stored(pool)
    ]
    assert [(c.prev_seq, c.seq) for c in kept] == [(0, 3), (3, 6)]
    # The owner cuts the log back to the first checkpoint, and that checkpoint's successor too.
    await tamper(scratch, "DELETE FROM audit_log WHERE seq > 3")
    await tamper_checkpoints(scratch, "DELETE FROM audit_checkpoints WHERE seq = 6")
    assert (await checkpoints.verify(pool, KEY)).ok  # what the database holds agrees with itself
    result = await checkpoints.verify(pool, KEY, kept)
    assert (result.broken_seq, result.problem) == (4, "missing")
    # A checkpoint missing from the middle of the list is named too.
    await tamper_checkpoints(scratch, "DELETE FROM audit_checkpoints WHERE seq = 3")
    result = await checkpoints.verify(pool, KEY, kept[1:])
    assert (result.broken_seq, result.problem) == (6, "checkpoint")
    assert "the checkpoints between seq 3 and this one are missing" in str(result)


async def test_a_checkpoint_not_signed_by_the_key_is_refused(pool: asyncpg.Pool) -> None:
    await rows(pool, 2)
    assert await checkpoints.checkpoint(pool, OTHER) is not None  # the owner has another key
    result = await checkpoints.verify(pool, KEY)
    assert (result.broken_seq, result.problem) == (2, "checkpoint")
    assert str(result) == "audit log broken at seq 2: checkpoint not signed by the audit key"
    [cp] = await checkpoints.stored(pool)
    altered = Checkpoint.from_json({**cp.to_json(), "key_id": KEY.key_id})
    assert not KEY.signed(altered)


async def test_a_long_log_is_caught_up_a_checkpoint_at_a_time(pool: asyncpg.Pool) -> None:
    await rows(pool, 5)
    last = await checkpoints.caught_up(pool, KEY, most=2)
    assert last is not None and last.seq == 5
    assert [(c.prev_seq, c.seq) for c in await checkpoints.stored(pool)] == [(0, 2), (2, 4), (4, 5)]
    assert (await checkpoints.verify(pool, KEY)).anchored == 3


async def test_nothing_is_signed_over_a_broken_chain(scratch: str, pool: asyncpg.Pool) -> None:
    await rows(pool, 3)
    await tamper(scratch, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 2")
    with pytest.raises(CheckpointRefused) as refused:
        await checkpoints.checkpoint(pool, KEY)
    assert refused.value.result.broken_seq == 2
    assert await checkpoints.stored(pool) == []


async def test_the_database_takes_only_checkpoints_that_describe_the_log(
    pool: asyncpg.Pool,
) -> None:
    await rows(pool, 2)
    head = await pool.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    hashes = b"".join(
        bytes.fromhex(r["hash"])
        for r in await pool.fetch("SELECT hash FROM audit_log ORDER BY seq")
    )
    add = "SELECT audit_checkpoint_add($1, $2, $3, $4, now(), $5, $6)"
    sig = bytes(64)
    with pytest.raises(asyncpg.InvalidParameterValueError):  # not the rows' hashes
        await pool.fetchval(add, 2, 0, head["hash"], bytes(64), KEY.key_id, sig)
    with pytest.raises(asyncpg.SerializationError):  # does not continue the last one
        await pool.fetchval(add, 2, 1, head["hash"], hashes[32:], KEY.key_id, sig)
    await pool.fetchval(add, 2, 0, head["hash"], hashes, KEY.key_id, sig)
    for statement in ("DELETE FROM audit_checkpoints", "UPDATE audit_checkpoints SET seq = 9"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement)


async def test_the_service_role_checkpoints_and_cannot_touch_checkpoints(
    scratch: str, service_role: str
) -> None:
    service = await create_pool(with_database(service_role, scratch.rsplit("/", 1)[1]))
    try:
        await rows(service, 3)
        cp = await checkpoints.checkpoint(service, KEY)
        assert cp is not None and cp.seq == 3
        assert (await checkpoints.verify(service, KEY)).ok
        for statement in (
            "DELETE FROM audit_checkpoints",
            "UPDATE audit_checkpoints SET head_hash = head_hash",
            "INSERT INTO audit_checkpoints SELECT * FROM audit_checkpoints",
            "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await service.execute(statement)
    finally:
        await service.close()


async def test_checkpoints_are_written_periodically(pool: asyncpg.Pool) -> None:
    await rows(pool, 2)
    task = asyncio.create_task(checkpoints.every(pool, KEY, 0.05))
    try:
        async with asyncio.timeout(20):
            while not await checkpoints.stored(pool):  # noqa: ASYNC110  # the database is polled
                await asyncio.sleep(0.05)
            await rows(pool, 1)
            while len(await checkpoints.stored(pool)) < 2:  # noqa: ASYNC110  # polled, as above
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert [(c.prev_seq, c.seq) for c in await checkpoints.stored(pool)] == [(0, 2), (2, 3)]


def test_the_command_line_checkpoints_exports_and_verifies_against_the_copies(
    scratch: str, settings: Settings, tmp_path: Path
) -> None:
    env = {
        "DSAR_DATABASE_URL": scratch,
        "DSAR_STORES": "",
        "DSAR_HOME": str(tmp_path),
        "DSAR_AUDIT_SIGNING_KEY": base64.b64encode(bytes(range(32))).decode(),
    }

    async def setup() -> None:
        p = await create_pool(scratch)
        try:
            await rows(p, 4)
        finally:
            await p.close()

    asyncio.run(setup())
    made = run_cli("audit", "checkpoint", env=env)
    assert (made.returncode, made.stdout) == (0, "checkpoint signed at seq 4\n"), made.stderr
    again = run_cli("audit", "checkpoint", env=env)
    assert (again.returncode, again.stdout) == (0, "nothing new since the checkpoint at seq 4\n")
    exported = run_cli("audit", "export-checkpoints", env=env)
    assert exported.returncode == 0
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text(exported.stdout)
    [line] = exported.stdout.splitlines()
    assert json.loads(line)["seq"] == 4 and json.loads(line)["key_id"] == KEY.key_id
    ok = run_cli("audit", "verify", "--checkpoints", str(kept), env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("audit log whole: 4 rows checked"), ok
    assert "checked against 1 signed checkpoint" in ok.stdout
    # An auditor checks with the public half alone; another key's public half is refused.
    public = run_cli("audit", "public-key", env=env)
    assert public.stdout.strip() == base64.b64encode(KEY.raw).decode()
    auditor = {**env, "DSAR_AUDIT_SIGNING_KEY": base64.b64encode(bytes(range(7, 39))).decode()}
    alone = run_cli("audit", "verify", "--public-key", public.stdout.strip(), env=auditor)
    assert alone.returncode == 0 and "checked against 1 signed checkpoint" in alone.stdout
    other = base64.b64encode(OTHER.raw).decode()
    wrong = run_cli("audit", "verify", "--public-key", other, env=env)
    assert (wrong.returncode, wrong.stdout) == (
        1,
        "audit log broken at seq 4: checkpoint not signed by the audit key\n",
    )
    asyncio.run(tamper(scratch, "DELETE FROM audit_log WHERE seq >= 2"))
    asyncio.run(tamper_checkpoints(scratch, "DELETE FROM audit_checkpoints"))
    cut = run_cli("audit", "verify", "--checkpoints", str(kept), env=env)
    assert cut.returncode == 1
    assert cut.stdout.startswith("audit log broken at seq 2: this row and those after it")
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("{not json\n")
    bad = run_cli("audit", "verify", "--checkpoints", str(garbled), env=env)
    assert (bad.returncode, bad.stderr) == (
        2,
        f"dsar audit: {garbled}: line 1 is not a checkpoint\n",
    )


async def test_a_serving_app_signs_checkpoints_with_its_key(
    settings: Settings, deployment: Deployment, stores: Stores, owner_db: asyncpg.Pool
) -> None:
    app = create_app(replace(settings, audit_checkpoint_interval=1))
    key = AuditKey(settings.audit_signing_key)
    async with app.router.lifespan_context(app):
        seq = await read(app.state.services.db, uuid4())  # as the service's own role
        async with asyncio.timeout(30):
            while (await owner_db.fetchval("SELECT max(seq) FROM audit_checkpoints") or 0) < seq:  # noqa: ASYNC110  # the database is polled
                await asyncio.sleep(0.1)
    result = await checkpoints.verify(owner_db, key)
    assert result.ok and result.anchored >= 1, str(result)
