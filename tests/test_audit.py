"""The audit log: a hash chain kept by the database, refused changes, and `dsar audit verify`.

Tests that break a chain do it in a throw-away database of their own (`scratch`): the shared
service database's chain must stay whole for everyone else.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest

from domain.audit import (
    GENESIS,
    AccessEntry,
    Action,
    AuditUnavailable,
    Db,
    GroupCommit,
    Outcome,
    access_log,
    actor_of,
    canonical,
    chain_hash,
    record,
    verify,
)
from domain.principals import Customer, Partner, SupportAgent
from stores.deployment import Deployment
from stores.pool import create_pool
from stores.scope import Scope, scoped
from tests._pg import new_database
from tests._tokens import TEST_ISSUER

AGENT = SupportAgent(TEST_ISSUER, "agent-7", frozenset({"support:read"}))
PARTNER = Partner(TEST_ISSUER, "partner-app")


def customer(subject: UUID) -> Customer:
    return Customer(TEST_ISSUER, f"login-{subject.hex[:8]}", subject)


@pytest.fixture
async def scratch(pg_server: str, prefix: str) -> AsyncIterator[str]:
    """A migrated service database of this test's own, dropped afterwards."""
    name = f"{prefix}_audit_{secrets.token_hex(3)}"
    yield await new_database(pg_server, name)
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# Keys whose code point order differs from most collations; lengths in bytes, not characters;
# separators and escapes inside values.
TRICKY_ACTOR = {
    "kind": "support",
    "iss": "https://idp.test/ä",
    "sub": "日本-🙂",
    "Z": "",
    "a": "a:b",
}
TRICKY_PURPOSE = {"reason": 'Line 1\nline 2 "quoted" \\ é\u0301', "ticket": "", "é": "x", "z": "1:"}


@pytest.fixture
async def db(deployment: Deployment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(deployment.migration_dsn)
    yield pool
    await pool.close()


async def read(
    pool: Db | GroupCommit,
    subject: UUID | None = None,
    action: Action = Action.SUBJECT_READ,
    categories: tuple[str, ...] = ("profile",),
) -> int:
    """One audited agent read, with a purpose like the look-up's."""
    return await record(
        pool,
        request_id=f"req-{secrets.token_hex(4)}",
        actor=AGENT,
        subject_id=subject,
        action=action,
        outcome="allowed",
        purpose={"ticket": "SUP-1042", "reason": "Person wrote in asking what we hold"},
        categories=categories,
    )


async def test_rows_chain_each_to_the_one_before(db: asyncpg.Pool) -> None:
    subject = uuid4()
    seqs = [
        await read(db, subject),
        await record(
            db,
            request_id="req-denied",
            actor=None,
            subject_id=None,
            action=Action.ACCESS_DENIED,
            outcome="denied",
        ),
        await read(db, subject, categories=("payment", "profile.email")),
    ]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    rows = await db.fetch(
        "SELECT * FROM audit_log WHERE seq >= $1 - 1 ORDER BY seq LIMIT 4", seqs[0]
    )
    for before, row in itertools.pairwise(rows):
        assert row["prev_hash"] == before["hash"]
    mine = [r for r in rows if r["seq"] in seqs]
    assert [r["actor"] for r in mine] == [actor_of(AGENT), {"kind": "anonymous"}, actor_of(AGENT)]
    assert mine[2]["categories"] == ["payment", "profile.email"]
    assert mine[1]["purpose"] == {}
    result = await verify(db)
    assert result.ok, str(result)
    assert result.checked >= 3
    assert result.head == await db.fetchval("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    async with db.acquire() as conn, conn.transaction():  # inside a caller's transaction too
        assert (await verify(conn)).ok


async def test_python_and_the_database_hash_the_same_bytes(icu_pool: asyncpg.Pool) -> None:
    db, actor, purpose = icu_pool, TRICKY_ACTOR, TRICKY_PURPOSE
    cases = [
        (7, datetime(2024, 2, 29, 23, 59, 59, 0, tzinfo=UTC), "r", actor, str(uuid4()), purpose),
        (1, datetime(1999, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), "", {"kind": "anonymous"}, None, {}),
    ]
    async with db.acquire() as conn:
        # The session's own settings must not change the text the database hashes.
        await conn.execute("SET TimeZone = 'Asia/Kolkata'; SET DateStyle = 'SQL, DMY'")
        for seq, at, rid, act, subject, purp in cases:
            for categories in ([], ["profile", "profile.email", "web_analytics"]):
                ours = canonical(
                    seq=seq,
                    at=at,
                    request_id=rid,
                    actor=act,
                    subject_id=subject,
                    action="subject.read",
                    purpose=purp,
                    categories=categories,
                    outcome="allowed",
                )
                row = await conn.fetchrow(
                    """SELECT c, encode(sha256(convert_to($10 || c, 'UTF8')), 'hex')
                       FROM audit_canonical($1, $2, $3, $4::text::jsonb, $5::uuid, $6,
                                            $7::text::jsonb, $8, $9) AS c""",
                    seq,
                    at,
                    rid,
                    orjson.dumps(act).decode(),
                    subject,
                    "subject.read",
                    orjson.dumps(purp).decode(),
                    categories,
                    "allowed",
                    GENESIS,
                )
                assert row is not None
                theirs, theirs_hash = row
                assert ours == theirs
                assert chain_hash(GENESIS, ours) == theirs_hash
        await conn.execute("RESET TimeZone; RESET DateStyle")


async def test_a_hundred_concurrent_writers_leave_a_gap_free_valid_chain(scratch: str) -> None:
    pool = await create_pool(scratch, max_size=10)
    try:
        subject = uuid4()
        seqs = await asyncio.gather(*(read(pool, subject) for _ in range(100)))
        assert sorted(seqs) == list(range(1, 101))
        result = await verify(pool, batch=7)  # a small batch: the cursor pages many times
        assert (result.ok, result.checked) == (True, 100), str(result)
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET outcome = 'allowed' WHERE seq = $1",
        "DELETE FROM audit_log WHERE seq = $1",
        "TRUNCATE audit_log",
    ],
)
async def test_the_database_refuses_changes_even_from_the_owner(
    db: asyncpg.Pool, statement: str
) -> None:
    seq = await read(db)
    async with db.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement, *([seq] if "$1" in statement else []))
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE seq = $1", seq) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO audit_log (seq, request_id, actor, action, outcome, prev_hash, hash) "
        "VALUES (1000000, 'r', '{\"kind\": \"support\"}', 'subject.read', 'allowed', "
        "repeat('0', 64), repeat('0', 64))",
        "UPDATE audit_log SET outcome = 'allowed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
        "DROP TABLE audit_log",
    ],
)
async def test_the_application_role_can_only_append_through_the_function(
    db: asyncpg.Pool, statement: str
) -> None:
    async with db.acquire() as conn:
        await conn.execute("SET ROLE dsar_app")
        try:
            seq = await read(conn)
            # Row-level security: the row exists for the role only under a scope that reads it.
            assert await conn.fetchval("SELECT outcome FROM audit_log WHERE seq = $1", seq) is None
            async with scoped(conn, scope=Scope.AUDIT) as audit_conn:
                found = "SELECT outcome FROM audit_log WHERE seq = $1"
                assert await audit_conn.fetchval(found, seq) == "allowed"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
            assert (await verify(conn)).ok
        finally:
            await conn.execute("RESET ROLE")


async def tamper(dsn: str, *statements: str, args: tuple[object, ...] = ()) -> None:
    """What a superuser can do behind the service's back: disable the triggers and edit."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            for s in statements:
                await conn.execute(s, *args)
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    finally:
        await conn.close()


FORGED = (
    "INSERT INTO audit_log (seq, request_id, actor, action, outcome, prev_hash, hash) "
    "SELECT 6, 'r', '{{\"kind\": \"support\"}}', 'subject.read', 'allowed', {prev}, {hash} "
    "FROM audit_log WHERE seq = 5"
)


@pytest.mark.parametrize(
    ("statements", "seq", "problem"),
    [
        (["UPDATE audit_log SET outcome = 'denied' WHERE seq = 3"], 3, "hash"),
        (["UPDATE audit_log SET categories = '{payment}' WHERE seq = 1"], 1, "hash"),
        (["UPDATE audit_log SET at = at - interval '1 hour' WHERE seq = 4"], 4, "hash"),
        (['UPDATE audit_log SET purpose = \'{"ticket": "X"}\' WHERE seq = 2'], 2, "hash"),
        (["UPDATE audit_log SET actor = '{\"kind\": {}}' WHERE seq = 2"], 2, "malformed"),
        # A deleted row is named itself: the first seq that is not there.
        (["DELETE FROM audit_log WHERE seq = 3"], 3, "gap"),
        (["DELETE FROM audit_log WHERE seq = 1"], 1, "gap"),
        # A row put in by hand after the last one: a made-up hash, then a made-up link.
        ([FORGED.format(prev="hash", hash="repeat('a', 64)")], 6, "hash"),
        ([FORGED.format(prev="repeat('0', 64)", hash="hash")], 6, "prev_hash"),
    ],
)
async def test_verify_names_the_first_row_edited_behind_the_services_back(
    scratch: str, statements: list[str], seq: int, problem: str
) -> None:
    pool = await create_pool(scratch)
    try:
        for _ in range(5):
            await read(pool, uuid4())
        assert (await verify(pool)).ok
        await tamper(scratch, *statements)
        result = await verify(pool)
        assert (result.broken_seq, result.problem) == (seq, problem)
        assert str(result).startswith(f"audit log broken at seq {seq}: ")
        # The database's triggers are back: the next change is refused again.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute("DELETE FROM audit_log")
    finally:
        await pool.close()


async def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(scratch: str) -> None:
    pool = await create_pool(scratch)
    try:
        for _ in range(3):
            await read(pool)
        row = await pool.fetchrow("SELECT * FROM audit_log WHERE seq = 2")
        assert row is not None
        text = canonical(
            seq=2,
            at=row["at"],
            request_id=row["request_id"],
            actor=row["actor"],
            subject_id=None,
            action=row["action"],
            purpose=row["purpose"],
            categories=["payment"],
            outcome=row["outcome"],
        )
        forged = chain_hash(row["prev_hash"], text)
        edit = "UPDATE audit_log SET categories = '{payment}', hash = $1 WHERE seq = 2"
        await tamper(scratch, edit, args=(forged,))
        result = await verify(pool)
        assert (result.broken_seq, result.problem) == (3, "prev_hash")
    finally:
        await pool.close()


def run_cli(*args: str, dsn: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DSAR_DATABASE_URL": dsn, "DSAR_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_exits_0_when_whole_and_1_naming_the_broken_row(
    scratch: str, tmp_path: Path
) -> None:
    pool = await create_pool(scratch)
    try:
        for _ in range(3):
            await read(pool)
        head = await pool.fetchval("SELECT hash FROM audit_log WHERE seq = 3")
    finally:
        await pool.close()
    whole = await asyncio.to_thread(run_cli, "audit", "verify", dsn=scratch, home=tmp_path)
    assert (whole.returncode, whole.stderr) == (0, "")
    assert whole.stdout == f"audit log whole: 3 rows checked, head {head}\n"

    await tamper(scratch, "UPDATE audit_log SET request_id = 'other' WHERE seq = 2")
    broken = await asyncio.to_thread(run_cli, "audit", "verify", dsn=scratch, home=tmp_path)
    assert (broken.returncode, broken.stderr) == (1, "")
    assert broken.stdout == "audit log broken at seq 2: hash does not match the row\n"


async def test_the_cli_explains_a_database_without_the_log(
    pg_server: str, prefix: str, tmp_path: Path
) -> None:
    dsn = await new_database(pg_server, f"{prefix}_audit_empty", migrated=False)
    result = await asyncio.to_thread(run_cli, "audit", "verify", dsn=dsn, home=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr == "dsar audit: the service database has no audit log: run `dsar migrate`\n"
    )


async def test_record_raises_audit_unavailable_when_the_row_cannot_be_written(
    deployment: Deployment, pg_server: str, prefix: str
) -> None:
    pool = await create_pool(deployment.service_dsn)
    await pool.close()
    with pytest.raises(AuditUnavailable) as closed:
        await read(pool, uuid4())
    assert str(closed.value) == "InterfaceError"  # the error's type, never the row
    # A database without the function (not migrated) fails the same way.
    bare = await asyncpg.connect(
        await new_database(pg_server, f"{prefix}_audit_bare", migrated=False)
    )
    try:
        with pytest.raises(AuditUnavailable):
            await read(bare)
    finally:
        await bare.close()


@pytest.mark.parametrize(
    "categories", [["alice@example.com"], ["profile", "+1 555 0100"], ["Profile"], [""]]
)
async def test_categories_are_names_never_values(db: asyncpg.Pool, categories: list[str]) -> None:
    before = await db.fetchval("SELECT count(*) FROM audit_log")
    with pytest.raises(ValueError, match="category names"):
        await read(db, categories=tuple(categories))
    # The database function holds the same rule for any other caller.
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await db.fetchval(
            "SELECT audit_append('r', '{\"kind\": \"support\"}', NULL, 'subject.read', '{}', $1,"
            " 'allowed')",
            categories,
        )
    assert await db.fetchval("SELECT count(*) FROM audit_log") == before


async def test_only_declared_actions_outcomes_and_purposes_are_recorded(db: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="not a valid Action"):
        await record(
            db,
            request_id="r",
            actor=AGENT,
            subject_id=None,
            action="subject.peek",  # type: ignore[arg-type]  # what the type forbids, at run time
            outcome="allowed",
        )
    with pytest.raises(ValueError, match="outcome"):
        await record(
            db,
            request_id="r",
            actor=AGENT,
            subject_id=None,
            action=Action.SUBJECT_READ,
            outcome="ok",  # type: ignore[arg-type]  # what the type forbids, at run time
        )
    with pytest.raises(ValueError, match="purpose key"):
        await record(
            db,
            request_id="r",
            actor=AGENT,
            subject_id=None,
            action=Action.SUBJECT_READ,
            outcome="allowed",
            purpose={"email": "x"},
        )
    with pytest.raises(ValueError, match="category names"):
        await read(db, categories="profile")  # type: ignore[arg-type]  # a str is not a list


def test_actors_are_identifiers_never_names() -> None:
    subject = uuid4()
    assert actor_of(customer(subject)) == {
        "kind": "customer",
        "iss": TEST_ISSUER,
        "sub": f"login-{subject.hex[:8]}",
    }
    assert actor_of(PARTNER) == {"kind": "partner", "iss": TEST_ISSUER, "client_id": "partner-app"}
    assert actor_of(AGENT) == {"kind": "support", "iss": TEST_ISSUER, "sub": "agent-7"}
    assert actor_of(None) == {"kind": "anonymous"}


async def test_access_log_lists_partner_and_agent_access_newest_first(scratch: str) -> None:
    pool = await create_pool(scratch)
    subject, other = uuid4(), uuid4()

    async def add(
        actor: Customer | Partner | SupportAgent | None,
        action: Action = Action.SUBJECT_READ,
        outcome: Outcome = "allowed",
        subject_id: UUID = subject,
        purpose: dict[str, str] | None = None,
        categories: tuple[str, ...] = (),
    ) -> None:
        await record(
            pool,
            request_id="r",
            actor=actor,
            subject_id=subject_id,
            action=action,
            outcome=outcome,
            purpose=purpose,
            categories=categories,
        )

    try:
        await add(AGENT, purpose={"ticket": "SUP-1", "reason": "x" * 12})
        await add(customer(subject), Action.EXPORT_REQUEST)
        await add(PARTNER, Action.TRANSFER_DOWNLOAD, categories=("payment",))
        await add(AGENT, subject_id=other, purpose={"ticket": "SUP-2"})
        await add(None, Action.ACCESS_DENIED, "denied")
        await add(AGENT, Action.ACCESS_DENIED, "denied")
        entries = await access_log(pool, subject)
        assert [
            (e.actor_kind, e.client_id, e.ticket, e.action, e.outcome, e.categories)
            for e in entries
        ] == [
            ("support", None, None, "access.denied", "denied", ()),
            ("partner", "partner-app", None, "transfer.download", "allowed", ("payment",)),
            ("support", None, "SUP-1", "subject.read", "allowed", ()),
        ]
        assert all(isinstance(e, AccessEntry) and e.at.tzinfo is not None for e in entries)
        assert entries[0].at > entries[-1].at
        assert len(await access_log(pool, subject, limit=1)) == 1
    finally:
        await pool.close()
