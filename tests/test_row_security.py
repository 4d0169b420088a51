"""Least privilege in the service database (issue 18, item 2): the service's role is bound by
row-level security, so a query that forgets its subject filter returns nothing; it cannot turn
that off, write someone else's rows, or touch the audit log but through its function."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest

from api.settings import Settings
from stores.deployment import Deployment, locate, migrate
from stores.migrate import MigrationError, apply, migrations_for
from stores.pool import create_pool
from stores.roles import EMBEDDED_OWNER, EMBEDDED_SERVICE, role_report
from stores.scope import Scope, bind, scoped
from stores.subjects import Subjects
from tests._cli import run_cli

# Every per-person table of the service database, and the scopes that open it across people.
PROTECTED = {
    "exports": {Scope.BY_ID, Scope.PARTNER, Scope.SWEEP, Scope.STAFF},
    "grants": {Scope.BY_ID, Scope.PARTNER},
    "subjects": {Scope.SUBJECTS},
    "identity_links": {Scope.LOGIN},
    "audit_log": {Scope.SUPPORT, Scope.AUDIT, Scope.STAFF},
    "account_sessions": {Scope.SWEEP},
}


async def _export(owner: asyncpg.Pool, subject: UUID) -> UUID:
    export_id = uuid4()
    await owner.execute(
        "INSERT INTO exports (id, subject_id, requested_by, purpose, format, categories, "
        "verification, status, expires_at) VALUES ($1, $2, '{}', 'access', 'json', '{profile}', "
        "'{}', 'ready', now() + interval '1 day')",
        export_id,
        subject,
    )
    return export_id


@pytest.fixture
async def two(owner_db: asyncpg.Pool) -> AsyncIterator[tuple[UUID, UUID]]:
    """Two people with a row in every protected table (written by the owner, as a fixture)."""
    people = (uuid4(), uuid4())
    partner = f"rls-{secrets.token_hex(4)}"
    await owner_db.execute(
        "INSERT INTO partners (client_id, issuer, name, categories) VALUES ($1, 'i', 'P', '{}')",
        partner,
    )
    for n, sid in enumerate(people):
        await owner_db.execute(
            "INSERT INTO subjects (id, anchor) VALUES ($1, $2)", sid, f"rls-{sid}"
        )
        await owner_db.execute(
            "INSERT INTO identity_links (issuer, sub, subject_id) VALUES ('rls', $1, $2)",
            str(sid),
            sid,
        )
        await _export(owner_db, sid)
        await owner_db.execute(
            "INSERT INTO grants (id, subject_id, partner, categories, granted_by, verification, "
            "expires_at) VALUES ($1, $2, $3, '{profile}', '{}', '{}', now() + interval '1 day')",
            uuid4(),
            sid,
            partner,
        )
        await owner_db.fetchval(
            "SELECT audit_append($1, '{\"kind\": \"anonymous\"}', $2, 'access.denied', '{}', "
            "'{}', 'denied')",
            f"rls-{n}",
            sid,
        )
        await owner_db.execute(
            "INSERT INTO account_sessions (id_hash, sealed, signed_in, expires_at, ends_at) "
            "VALUES ($1, '\\x00', false, now() + interval '1 hour', now() + interval '1 hour')",
            hashlib.sha256(sid.bytes).digest(),
        )
    yield people


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the service's own role (DSAR_DATABASE_URL of the test run)."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url)
    yield conn
    await conn.close()


async def test_the_service_role_is_bound_and_the_owner_is_not(
    service: asyncpg.Connection, owner_db: asyncpg.Pool
) -> None:
    mine = await role_report(service)
    assert mine.bound and mine.problem() is None
    assert not mine.superuser and not mine.bypassrls and mine.owns == ()
    async with owner_db.acquire() as conn:
        owner = await role_report(conn)
    assert not owner.bound
    problem = owner.problem()
    assert problem is not None and "row-level security does not bind it" in problem


async def test_a_query_without_the_subject_filter_returns_nothing(
    service: asyncpg.Connection, owner_db: asyncpg.Pool, two: tuple[UUID, UUID]
) -> None:
    for table in PROTECTED:
        assert await owner_db.fetchval(f"SELECT count(*) FROM {table}") >= 2  # noqa: S608  # our names
        # No transaction, or one that names no one: nothing at all.
        assert await service.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
        async with service.transaction():
            await bind(service)
            assert await service.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608


async def test_a_transaction_bound_to_one_person_sees_only_theirs(
    service: asyncpg.Connection, two: tuple[UUID, UUID]
) -> None:
    a, b = two
    async with scoped(service, subject=a) as conn:
        for table, column in [
            ("exports", "subject_id"),
            ("grants", "subject_id"),
            ("identity_links", "subject_id"),
            ("audit_log", "subject_id"),
            ("subjects", "id"),
        ]:
            seen = {r[0] for r in await conn.fetch(f"SELECT {column} FROM {table}")}  # noqa: S608
            assert seen == {a}, table
        # The other person's rows cannot be changed, nor made: the policy checks new rows too.
        assert await conn.execute("UPDATE exports SET failure = 'x' WHERE subject_id = $1", b) == (
            "UPDATE 0"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO identity_links (issuer, sub, subject_id) VALUES ('x', 'y', $1)",
                    b,
                )
        # Nor can a row of this person's be handed over to the other.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("UPDATE exports SET subject_id = $2 WHERE subject_id = $1", a, b)
    # The settings end with the transaction: the same connection sees nothing again.
    assert await service.fetchval("SELECT count(*) FROM exports") == 0


async def test_the_one_statement_lookups_read_only_what_their_binding_would(
    service: asyncpg.Connection, two: tuple[UUID, UUID]
) -> None:
    """dsar_subject_for_login and dsar_anchor_of (0020_bound_lookups.sql) bind inside the
    statement: each reads one row as its binding allows, and leaves whatever binding the
    caller's transaction had exactly as it was, and none outside a transaction."""
    a, b = two
    assert await service.fetchval("SELECT dsar_subject_for_login('rls', $1)", str(a)) == a
    assert await service.fetchval("SELECT dsar_subject_for_login('rls', 'nobody')") is None
    assert await service.fetchval("SELECT dsar_anchor_of($1)", b) == f"rls-{b}"
    assert await service.fetchval("SELECT dsar_anchor_of($1)", uuid4()) is None
    settings = (
        "SELECT current_setting('dsar.subject', true), current_setting('dsar.scope', true), "
        "current_setting('dsar.session', true)"
    )
    # Nothing is left behind for the next statement on the connection.
    assert await service.fetchval("SELECT count(*) FROM identity_links") == 0
    assert tuple(await service.fetchrow(settings)) in {("", "", ""), (None, None, None)}
    async with scoped(service, subject=a, session=b"\x01") as conn:
        bound = tuple(await conn.fetchrow(settings))
        assert await conn.fetchval("SELECT dsar_subject_for_login('rls', $1)", str(b)) == b
        assert await conn.fetchval("SELECT dsar_anchor_of($1)", b) == f"rls-{b}"
        assert tuple(await conn.fetchrow(settings)) == bound
        seen = {r[0] for r in await conn.fetch("SELECT subject_id FROM identity_links")}
        assert seen == {a}  # still bound to a, and to nothing wider
    async with scoped(service, scope=Scope.STAFF) as conn:
        await conn.fetchval("SELECT dsar_anchor_of($1)", a)
        assert await conn.fetchval("SELECT current_setting('dsar.scope', true)") == "staff"


async def test_a_login_and_its_anchor_are_read_in_one_statement_as_the_service_role(
    settings: Settings, two: tuple[UUID, UUID]
) -> None:
    """`Subjects.login` (the API's authentication): the login's subject and its anchor value
    from the two bound lookups in one statement, nothing for a login linked to no one or to
    another issuer, and no link read or made by asking."""
    a, _ = two
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        subjects = Subjects(pool)
        assert await subjects.login("rls", str(a)) == (a, f"rls-{a}")
        assert await subjects.login("rls", "nobody") == (None, None)
        assert await subjects.login("another issuer", str(a)) == (None, None)
        assert await pool.fetchval("SELECT count(*) FROM identity_links") == 0
    finally:
        await pool.close()


async def test_a_scope_opens_only_the_tables_that_name_it(
    service: asyncpg.Connection, two: tuple[UUID, UUID]
) -> None:
    for scope in Scope:
        async with scoped(service, scope=scope) as conn:
            for table, scopes in PROTECTED.items():
                count = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
                assert (count >= 2) == (scope in scopes), (scope, table)


async def test_an_account_session_is_seen_only_by_its_own_id(
    service: asyncpg.Connection, two: tuple[UUID, UUID]
) -> None:
    a, _ = two
    mine = hashlib.sha256(a.bytes).digest()
    async with scoped(service, session=mine) as conn:
        assert [r[0] for r in await conn.fetch("SELECT id_hash FROM account_sessions")] == [mine]


@pytest.mark.parametrize(
    "statement",
    [
        "SET row_security = off; SELECT count(*) FROM exports",
        "ALTER TABLE exports DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE exports NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY subject_rows ON exports",
        "CREATE POLICY everyone ON exports USING (true)",
        "SELECT dsar_protect_subject_rows('exports', ARRAY['audit'])",
        "ALTER ROLE CURRENT_USER BYPASSRLS",
        "SET ROLE postgres",
        "INSERT INTO audit_log (seq, request_id, actor, action, outcome, prev_hash, hash) "
        "VALUES (1000000, 'r', '{}', 'a', 'allowed', repeat('0', 64), repeat('0', 64))",
        "UPDATE audit_log SET outcome = 'allowed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DELETE FROM exports",
        "CREATE TABLE mine (id int)",
    ],
)
async def test_the_service_role_cannot_get_past_it(
    service: asyncpg.Connection, two: tuple[UUID, UUID], statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service.execute(statement)


async def test_a_later_table_is_protected_with_one_call(
    owner_db: asyncpg.Pool, service: asyncpg.Connection
) -> None:
    """How a later migration protects a new per-person table (docs/SECURITY.md)."""
    table = f"probe_{secrets.token_hex(4)}"
    a, b = uuid4(), uuid4()
    async with owner_db.acquire() as owner:
        await owner.execute(f"CREATE TABLE {table} (subject_id uuid NOT NULL, note text)")
        try:
            condition = await owner.fetchval(
                "SELECT dsar_protect_subject_rows($1, ARRAY['sweep'])", table
            )
            assert condition == (
                "subject_id = public.dsar_current_subject() "
                "OR public.dsar_current_scope() = ANY ('{sweep}'::text[])"
            )
            await owner.execute(f"GRANT SELECT, INSERT ON {table} TO dsar_app")
            await owner.execute(f"INSERT INTO {table} VALUES ($1, 'a'), ($2, 'b')", a, b)  # noqa: S608
            assert await service.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
            async with scoped(service, subject=a) as conn:
                assert await conn.fetchval(f"SELECT note FROM {table}") == "a"  # noqa: S608
            async with scoped(service, scope=Scope.SWEEP) as conn:
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 2  # noqa: S608
            for bad in ("ARRAY['Everyone; --']", "'{}', 'nope'"):
                with pytest.raises(asyncpg.PostgresError):
                    await owner.fetchval(f"SELECT dsar_protect_subject_rows($1, {bad})", table)
        finally:
            await owner.execute(f"DROP TABLE {table}")


@pytest.fixture
def own_folder() -> Iterator[Path]:
    """A folder outside pytest's shared temporary root, which concurrent test sessions on this
    machine prune (an embedded server's data must not vanish under it)."""
    folder = Path(tempfile.mkdtemp(prefix="dsar-rls-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_the_embedded_default_migrates_as_its_owner_and_serves_as_its_service_role(
    own_folder: Path,
) -> None:
    tmp_path = own_folder
    deployment: Deployment = locate(tmp_path / "home")
    try:
        assert deployment.owner_dsn is not None
        assert f"//{EMBEDDED_OWNER}@" in deployment.owner_dsn
        assert f"//{EMBEDDED_SERVICE}@" in deployment.service_dsn
        applied = await migrate(deployment)
        assert "0009_row_security.sql" in applied["service"]
        owner = await asyncpg.connect(deployment.owner_dsn)
        service = await asyncpg.connect(deployment.service_dsn)
        try:
            report = await role_report(owner)
            assert not report.superuser and "exports" in report.owns
            assert (await role_report(service)).bound
            assert await owner.fetchval("SELECT count(*) FROM schema_migrations") >= 9
            # The service finds nothing to migrate, and may not change the schema.
            as_service = Deployment(deployment.service_dsn, deployment.stores)
            assert await migrate(as_service) == {"service": []}
        finally:
            await owner.close()
            await service.close()
        # Starting again reuses both roles; the command line prints either URL.
        assert locate(tmp_path / "home").owner_dsn == deployment.owner_dsn
        env = {"DSAR_HOME": str(tmp_path / "home"), "DSAR_DATABASE_URL": "", "DSAR_STORES": ""}
        urls = [
            await asyncio.to_thread(run_cli, "db-url", *flag, env=env) for flag in ([], ["--owner"])
        ]
        assert [(u.returncode, u.stdout) for u in urls] == [
            (0, deployment.service_dsn + "\n"),
            (0, deployment.owner_dsn + "\n"),
        ]
    finally:
        deployment.stop()


async def test_migrate_without_the_owners_url_warns_and_finds_nothing_to_do(
    settings: Settings, deployment: Deployment, repo_root: Path, tmp_path: Path
) -> None:
    """The service's own URL alone: `dsar migrate` says why that is not the layout, and the
    role reads that every migration is applied (it could change nothing anyway)."""
    env = {
        "DSAR_DATABASE_URL": str(settings.database_url),
        "DSAR_OWNER_DATABASE_URL": "",
        "DSAR_STORES": str(repo_root / "stores" / "demo.toml"),  # a company's: not migrated
        "DSAR_HOME": str(tmp_path),
    }
    done = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert (done.returncode, done.stdout) == (0, "service: up to date\n"), done.stderr
    assert done.stderr.startswith(
        "dsar migrate: warning: DSAR_OWNER_DATABASE_URL is not set: migrating with "
        "DSAR_DATABASE_URL, the service's own role."
    )


async def test_a_pending_migration_as_the_service_role_names_the_owners_variable(
    settings: Settings, deployment: Deployment, tmp_path: Path
) -> None:
    (tmp_path / "9999_more.sql").write_text("CREATE TABLE more_things (id int);")
    assert settings.database_url is not None
    with pytest.raises(MigrationError) as refused:
        await apply(settings.database_url, migrations_for("x", tmp_path))
    assert str(refused.value) == (
        "9999_more.sql: this role may not change the schema (SQLSTATE 42501); "
        "migrations run as the owner: set DSAR_OWNER_DATABASE_URL"
    )
