import asyncpg

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import build_subject, seed, subject_id, user_id


def test_building_a_subject_is_deterministic() -> None:
    a = build_subject("alice", full=True, sensitive=True)
    b = build_subject("alice", full=True, sensitive=True)
    assert a.rows == b.rows
    assert a.files == b.files
    assert a.rows != build_subject("bob", full=True, sensitive=True).rows


async def test_seeded_rows_are_the_built_ones(
    stores: Stores, catalogue: Catalogue, owner_db: asyncpg.Pool
) -> None:
    alice = build_subject("alice", full=True, sensitive=True)
    row = await stores.postgres("profile").pool.fetchrow(
        "SELECT u.given_name, u.email, a.city FROM users u JOIN addresses a ON a.user_id = u.id "
        "WHERE u.id = $1",
        user_id("alice"),
    )
    expected = alice.rows["profile"][0]
    assert tuple(row) == tuple(expected[k] for k in ("first_name", "email", "city"))
    events = await stores.postgres("web_analytics").pool.fetchval(
        "SELECT count(*) FROM page_events e JOIN identifies i USING (anonymous_id) "
        "WHERE i.user_id = $1 AND e.anonymous_id <> 'ajs-family-laptop'",
        user_id("alice"),
    )
    assert events == len(alice.rows["web_analytics"]) > 0
    subject = await owner_db.fetchrow("SELECT anchor, handle FROM subjects WHERE id = $1", alice.id)
    assert tuple(subject) == (str(user_id("alice")), "alice")


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
    heavy = await stores.person_of(subject_id("heavy"))
    assert heavy is not None
    assert (await stores.person_counts(heavy))["web_analytics"] == 5000
    await seed(stores, catalogue, issuer="urn:dsar:dev-issuer", heavy_events=3000)
    assert (await stores.person_counts(heavy))["web_analytics"] == 3000
