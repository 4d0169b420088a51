import asyncpg

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import build_subject, seed, subject_id


def test_building_a_subject_is_deterministic() -> None:
    a = build_subject("alice", full=True, sensitive=True)
    b = build_subject("alice", full=True, sensitive=True)
    assert a.rows == b.rows
    assert a.files == b.files
    assert a.rows != build_subject("bob", full=True, sensitive=True).rows


async def test_seeded_rows_are_the_built_ones(stores: Stores, catalogue: Catalogue) -> None:
    alice = build_subject("alice", full=True, sensitive=True)
    row = await stores.accounts.pool.fetchrow(
        "SELECT first_name, email, city FROM profile WHERE subject_id = $1", alice.id
    )
    expected = alice.rows["profile"][0]
    assert dict(row) == {k: expected[k] for k in ("first_name", "email", "city")}
    events = await stores.postgres("web_analytics").pool.fetchval(
        "SELECT count(*) FROM web_analytics WHERE subject_id = $1", alice.id
    )
    assert events == len(alice.rows["web_analytics"]) > 0


async def test_every_category_is_seeded_for_alice(stores: Stores) -> None:
    counts = (await stores.counts([subject_id("alice")]))[subject_id("alice")]
    assert set(counts) == {
        "profile",
        "identifiers",
        "payment",
        "device",
        "web_analytics",
        "geolocation",
        "recordings",
        "sensitive",
        "provided",
        "professional",
        "preferences",
    }
    assert all(n > 0 for n in counts.values())


async def test_seeding_again_adds_nothing(stores: Stores, catalogue: Catalogue) -> None:
    assert await seed(stores, catalogue, issuer="urn:dsar:dev-issuer") == []


async def test_categories_come_from_separate_databases(stores: Stores) -> None:
    names = set()
    for key in ("profile", "payment", "web_analytics"):
        names.add(await stores.postgres(key).pool.fetchval("SELECT current_database()"))
    assert len(names) == 3


async def test_heavy_events_load_through_copy(stores: Stores, catalogue: Catalogue) -> None:
    await seed(stores, catalogue, issuer="urn:dsar:dev-issuer", heavy_events=5000)
    sid = subject_id("heavy")
    pool: asyncpg.Pool = stores.postgres("web_analytics").pool
    assert (
        await pool.fetchval("SELECT count(*) FROM web_analytics WHERE subject_id=$1", sid) == 5000
    )
    await seed(stores, catalogue, issuer="urn:dsar:dev-issuer", heavy_events=3000)
    assert (
        await pool.fetchval("SELECT count(*) FROM web_analytics WHERE subject_id=$1", sid) == 3000
    )
