"""A person across the company's systems as they are: four systems, four kinds of id, one person.

alice is user 1001 in the app, `cus_00001001` in billing, `alice@example.com` in the CRM and
a handful of cookie ids in analytics; every category reaches her through the key its own
system uses, and nothing of anyone who shares none of her keys does.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from api.devissuer import DevIssuer
from api.settings import Settings
from catalogue import Catalogue
from stores.config import CategoryConfig, StoresError, load_stores
from stores.demo_rows import SHARED_COOKIE
from stores.deployment import DEMO_STORES, Deployment
from stores.files import HARD_LINK, LINK, UNSAFE_NAME, FilesStore, safe_name
from stores.mapping import Person
from stores.registry import Stores
from stores.seed import build_subject, subject_id, user_id
from tests._cli import cli_env, run_cli
from tests.exporters.conftest import make_bundle
from tests.reliability._server import stores_toml

SHARED = "Records found through these identifiers are not included"


async def test_alices_keys_are_found_across_four_systems(stores: Stores) -> None:
    alice = await stores.person_of(subject_id("alice"))
    assert alice is not None
    built = build_subject("alice", full=True, sensitive=True)
    assert alice.anchor == str(user_id("alice"))
    assert alice.of("email") == ("alice@example.com",)
    assert alice.of("customer") == (f"cus_{user_id('alice'):08d}",)
    assert set(alice.of("anonymous_id")) == {r["cookie_id"] for r in built.rows["device"]}
    assert alice.shared == {}


async def test_every_category_of_every_system_reaches_her(
    stores: Stores, catalogue: Catalogue
) -> None:
    built = build_subject("alice", full=True, sensitive=True)
    alice = await stores.person_of(subject_id("alice"))
    assert alice is not None
    counts = await stores.person_counts(alice)
    expected = {k: len(v) for k, v in built.rows.items() if v} | {"recordings": len(built.files)}
    assert counts == expected
    for fmt in ("json", "csv"):
        b = await make_bundle(stores, catalogue, subject_id("alice"), fmt)
        assert {k: c["records"] for k, c in b.manifest["categories"].items() if c["records"]} == (
            expected
        )


async def test_nobody_else_is_reached(stores: Stores, catalogue: Catalogue) -> None:
    """dave shares no key with alice: none of her values, in any system, is in his bundle."""
    b = await make_bundle(stores, catalogue, subject_id("dave"), "json")
    alice = await stores.person_of(subject_id("alice"))
    assert alice is not None
    everything = b"".join(b.files.values())
    for key, values in alice.values.items():
        for value in values:
            assert value.encode() not in everything, key


async def test_a_cookie_id_two_people_share_is_used_for_neither(
    stores: Stores, catalogue: Catalogue, client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """bob and carol signed in on one family computer. Its events could be either's, so
    neither receives them (README, "Shared identifiers"); both are told they exist."""
    for handle in ("bob", "carol"):
        person = await stores.person_of(subject_id(handle))
        assert person is not None
        assert SHARED_COOKIE not in person.of("anonymous_id")
        assert person.shared == {"anonymous_id": 1}
        built = build_subject(handle, full=True, sensitive=handle == "carol")
        counts = await stores.person_counts(person)
        assert counts["web_analytics"] == len(built.rows["web_analytics"])
        b = await make_bundle(stores, catalogue, subject_id(handle), "csv")
        assert SHARED_COOKIE.encode() not in b"".join(b.files.values())
        [note] = b.manifest["held_not_included"]
        assert note["what"] == "anonymous_id" and note["count"] == 1
        assert note["reason"].startswith(SHARED)
        assert SHARED in b.files["index.html"].decode()
        r = await client.post(
            "/graphql",
            json={"query": "{ me { webAnalytics(first: 100) { edges { node { sessionId } } } } }"},
            headers={"Authorization": f"Bearer {issuer.mint('customer', handle)}"},
        )
        edges = r.json()["data"]["me"]["webAnalytics"]["edges"]
        assert len(edges) == len(built.rows["web_analytics"])


def _files(stores: Stores) -> FilesStore:
    return stores.files("recordings")


async def test_a_path_traversal_value_never_leaves_the_folder(stores: Stores) -> None:
    media = _files(stores)
    outside = media.root.parent / "outside-secret"
    outside.mkdir(exist_ok=True)
    (outside / "secret.wav").write_bytes(b"not yours")
    for value in ("../outside-secret", "..", "1001/../../outside-secret", "/etc", "a\nb"):
        person = Person("x", {"user_id": (value,)})
        listing = await media.listing("recordings", person)
        assert listing.rows == [] and listing.paths == {}, value
    assert not safe_name("file.wav\n")
    assert CategoryConfig("recordings", "media", pattern="users/{user_id}/*").pattern_keys == (
        "user_id",
    )


async def test_links_and_unsafe_names_are_counted_never_followed(
    stores: Stores, catalogue: Catalogue, client: httpx.AsyncClient, issuer: DevIssuer
) -> None:
    """A link planted in a person's folder would point the export at any file the service
    can read; a name with a newline would break the ZIP and the response header."""
    folder = _files(stores).root / "users" / str(user_id("carol"))
    link = folder / "passwd.wav"
    newline = folder / "evil.wav\n"
    other = _files(stores).root / "users" / str(user_id("alice"))
    link.symlink_to("/etc/passwd")
    (folder / "theirs.png").symlink_to(next(other.iterdir()))
    newline.write_bytes(b"x")
    try:
        b = await make_bundle(stores, catalogue, subject_id("carol"), "json")
        assert not any(name.startswith("media/passwd") for name in b.files)
        assert b"root:" not in b"".join(b.files.values())
        notes = {n["reason"]: n["count"] for n in b.manifest["held_not_included"]}
        assert notes[LINK] == 2 and notes[UNSAFE_NAME] == 1
        token = issuer.mint("customer", "carol")
        for name in ("passwd.wav", "theirs.png"):
            r = await client.get(
                f"/recordings/{name}", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 404
        # Even a path that was listed is opened without following a link at the last step.
        media = _files(stores)
        try:
            async for _ in media.read(f"users/{user_id('carol')}/passwd.wav"):
                raise AssertionError("a link was followed")
        except OSError:
            pass
        else:
            raise AssertionError("opening a link must fail")
    finally:
        for p in (link, newline, folder / "theirs.png"):
            os.unlink(p)


def test_the_demo_file_is_packaged(tmp_path: Path) -> None:
    assert DEMO_STORES.is_file() and "format = 2" in DEMO_STORES.read_text()


async def test_store_connections_cannot_write(stores: Stores) -> None:
    """The company's stores are read, never written, whatever a bug might ask."""
    import asyncpg

    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await stores.postgres("profile").pool.execute("DELETE FROM users WHERE id = -1")
    crm = stores.store_of("professional")
    if crm.kind == "mysql":
        with pytest.raises(Exception, match="READ ONLY"):
            await crm.fetch("DELETE FROM contacts WHERE id = -1")  # type: ignore[union-attr]


async def test_values_match_exactly_whatever_the_column_folds(
    stores: Stores, catalogue: Catalogue
) -> None:
    """A user whose e-mail is alice's with a trailing space (MariaDB's PAD SPACE collations
    ignore it), or in capitals, reaches none of alice's CRM records."""
    import asyncpg

    app = await asyncpg.connect(stores.config.store("app").dsn)
    try:
        await app.executemany(
            "INSERT INTO users (id, email, username, given_name, family_name, signed_up_at, "
            "profile_updated_at) VALUES ($1, $2, $3, 'Mallory', 'M', now(), now())",
            [(5001, "alice@example.com ", "mallory1"), (5002, "ALICE@example.com", "mallory2")],
        )
        for uid in ("5001", "5002"):
            mallory = await stores.person(uid)
            assert mallory is not None
            counts = await stores.person_counts(mallory)
            assert "professional" not in counts and "provided" not in counts, uid
        alice = await stores.person_of(subject_id("alice"))
        assert alice is not None and alice.shared == {}
    finally:
        await app.execute("DELETE FROM users WHERE id IN (5001, 5002)")
        await app.close()


async def test_one_person_is_one_subject_however_the_anchor_is_written(stores: Stores) -> None:
    alice = subject_id("alice")
    for form in ("1001", "01001", "+1001"):
        assert await stores.subject_for_anchor(form) == alice, form
    for form in (" 1001x", "1001.5", "10\x0001", ""):
        assert await stores.subject_for_anchor(form) is None, repr(form)


async def test_hard_links_and_pipes_are_not_read(stores: Stores) -> None:
    media = _files(stores)
    folder = media.root / "users" / str(user_id("dave"))
    folder.mkdir(parents=True, exist_ok=True)
    outside = media.root.parent / "outside-hard"
    outside.write_bytes(b"not dave's")
    hard = folder / "hard.wav"
    os.link(outside, hard)
    fifo = folder / "pipe.wav"
    os.mkfifo(fifo)
    try:
        dave = await stores.person_of(subject_id("dave"))
        assert dave is not None
        listing = await stores.listing("recordings", dave)
        assert "hard.wav" not in listing.paths and "pipe.wav" not in listing.paths
        assert listing.refused.get(HARD_LINK) == 1
        for name in ("hard.wav", "pipe.wav"):
            with pytest.raises(OSError):
                async for _ in media.read(f"users/{user_id('dave')}/{name}"):
                    pass
    finally:
        os.unlink(hard)
        os.unlink(fifo)
        os.unlink(outside)


def test_seeding_a_companys_own_stores_is_refused(settings: Settings, tmp_path: Path) -> None:
    stores_file = tmp_path / "stores.toml"
    stores_file.write_text(DEMO_STORES.read_text())
    result = run_cli("seed", env=cli_env(settings, tmp_path, DSAR_STORES=str(stores_file)))
    assert result.returncode == 2
    assert "never writes" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            'isp = "isp"',
            'isp = "provider"',
            "stores.toml: categories.device: column 'provider' not found in analytics.devices",
        ),
        (
            'table = "geo_lookups"',
            'table = "geo"',
            "stores.toml: categories.geolocation: table 'geo' not found in store 'analytics'",
        ),
        (
            'first_seen = "first_seen"',
            'first_seen = "ip"',
            "stores.toml: categories.device.fields.first_seen: column 'ip' is inet, "
            "which cannot be read as timestamp",
        ),
    ],
)
async def test_a_stores_file_that_does_not_fit_the_systems_stops_start_up(
    deployment: Deployment, catalogue: Catalogue, tmp_path: Path, old: str, new: str, says: str
) -> None:
    """Checked against the live databases when the stores open: one line, and no service."""
    text = stores_toml(deployment.stores)
    assert old in text
    path = tmp_path / "stores.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(StoresError) as info:
        await Stores.open(load_stores(path), catalogue, deployment.service_dsn)
    assert str(info.value) == says
