"""Deterministic synthetic data for the demo company: a few named people, many small ones and
one heavy person, written into the company's own tables (stores/demo.toml), not dsar's.

`build_subject` makes a person's records in the catalogue's terms; `stores.demo_rows` turns them
into the company's rows. Everything is loaded with COPY. The same arguments always produce the
same rows.
"""

from __future__ import annotations

import ipaddress
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import asyncpg
from faker import Faker

from catalogue import Catalogue
from stores.demo_rows import SHARED_COOKIE, company_rows, cookie_ids, event_rows, shared_events
from stores.files import FilesStore
from stores.postgres import PostgresStore
from stores.registry import Stores
from stores.samples import sample_files
from stores.scope import Scope, scoped

NAMESPACE = UUID("6f1d2c1e-8a43-4f55-9b57-2c0e7d7f4a10")
DEMO_HANDLES = ("alice", "bob", "carol", "dave")
HEAVY = "heavy"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# The choices of a demo person, where a test relies on them: alice opted out of sale and sharing
# when she signed up (long before any 12-month period a statement covers); bob allows it all.
CHOICES = {
    "alice": {"do_not_sell_or_share": True, "advertising_cookies": False},
    "bob": {"do_not_sell_or_share": False, "advertising_cookies": True, "analytics_cookies": True},
}
# Where a demo person lives, where it matters (catalogue [jurisdictions]): alice under the
# GDPR, carol in California. Everyone else lives in a US state Faker picks, never California.
RESIDENCE = {
    "alice": {"city": "Berlin", "region": "BE", "postal_code": "10115", "country": "DE"},
    "carol": {"city": "Oakland", "region": "CA", "postal_code": "94612", "country": "US"},
}

PAGES = ("/", "/pricing", "/product", "/docs", "/blog", "/account", "/support", "/contact")
ACTIONS = ("view", "click", "scroll", "submit", "download")
ELEMENTS = ("nav", "cta", "footer-link", "search", "form")


def subject_id(handle: str) -> UUID:
    return uuid5(NAMESPACE, handle)


def user_id(handle: str) -> int:
    """The demo company's integer user id of a seeded person."""
    if handle in DEMO_HANDLES:
        return 1001 + DEMO_HANDLES.index(handle)
    if handle == HEAVY:
        return 999_999
    head, _, number = handle.rpartition("-")
    if head == "subject" and number.isdigit():
        return 100_000 + int(number)
    return 1_000_000 + int.from_bytes(subject_id(handle).bytes[:4], "big") % 1_000_000_000


@dataclass(slots=True)
class SubjectData:
    """One subject's rows per category, each a dict keyed by column name."""

    id: UUID
    handle: str | None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)
    # Cookie ids this person shares with someone else (a family computer).
    shared_cookies: list[str] = field(default_factory=list)

    @property
    def user_id(self) -> int:
        return user_id(self.handle or "")


def build_subject(handle: str, *, full: bool, sensitive: bool, events: int = 40) -> SubjectData:
    """Realistic values from Faker, seeded by the handle so they never change between runs."""
    fake = Faker("en_US")
    seed = int.from_bytes(subject_id(handle).bytes[:4], "big")
    fake.seed_instance(seed)
    rnd = random.Random(seed)  # noqa: S311  # synthetic data, not security
    first, last = fake.first_name(), fake.last_name()
    if handle in DEMO_HANDLES:
        first = handle.capitalize()  # the demo people are called what their handles say
    at = EPOCH + timedelta(days=rnd.randint(0, 300))
    d = SubjectData(id=subject_id(handle), handle=handle)
    d.rows["profile"] = [
        {
            "first_name": first,
            "last_name": last,
            "email": f"{handle}@example.com",
            "phone": fake.numerify("+1-###-###-####"),
            "street": fake.street_address(),
            "city": fake.city(),
            "region": fake.state_abbr(),
            "postal_code": fake.zipcode(),
            "country": "US",
            "updated_at": at,
        }
    ]
    profile = d.rows["profile"][0]
    if profile["region"] == "CA":
        profile["region"] = "NV"
    profile.update(RESIDENCE.get(handle, {}))
    d.rows["identifiers"] = [
        {
            "username": f"{handle}.{last.lower()}",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$" + fake.sha256()[:43],
            "security_question": "What was the name of your first pet?" if sensitive else None,
            "security_answer_hash": fake.sha256() if sensitive else None,
            "created_at": at,
        }
    ]
    d.rows["preferences"] = [
        {
            "functional_cookies": True,
            "analytics_cookies": rnd.random() < 0.7,
            "advertising_cookies": rnd.random() < 0.4,
            "marketing_emails": rnd.random() < 0.5,
            "do_not_sell_or_share": rnd.random() < 0.3,
            "language": "en-US",
            "updated_at": at,
        }
    ]
    d.rows["preferences"][0].update(CHOICES.get(handle, {}))
    if not full:
        return d
    d.rows["professional"] = [
        {"company_name": fake.company(), "job_title": fake.job(), "updated_at": at}
    ]
    d.rows["provided"] = [
        {
            "channel": rnd.choice(("form", "survey", "email", "letter")),
            "title": fake.sentence(nb_words=5),
            "body": fake.paragraph(nb_sentences=3),
            "submitted_at": at + timedelta(days=i),
        }
        for i in range(3)
    ]
    d.rows["device"] = [
        {
            "ip_address": ipaddress.ip_address(fake.ipv4_public()),
            "user_agent": fake.user_agent(),
            "cookie_id": fake.uuid4(),
            "device_id": fake.uuid4(),
            "isp": rnd.choice(("Comcast", "Verizon", "AT&T", "Spectrum")),
            "first_seen": at + timedelta(hours=i),
            "last_seen": at + timedelta(days=30 + i),
        }
        for i in range(2)
    ]
    d.rows["geolocation"] = [
        {
            "observed_at": at + timedelta(days=i),
            "ip_address": ipaddress.ip_address(fake.ipv4_public()),
            "city": fake.city(),
            "region": fake.state_abbr(),
            "postal_code": fake.zipcode(),
            "country": "US",
            "time_zone": "America/Los_Angeles",
        }
        for i in range(3)
    ]
    d.rows["web_analytics"] = list(web_events(seed, events))
    d.rows["payment"] = [
        {
            "account_holder": f"{first} {last}",
            "bank_name": rnd.choice(("First National", "Union Savings", "Pacific Credit")),
            "account_number": fake.numerify("##########"),
            "routing_number": fake.numerify("#########"),
            "purpose": "refund",
            "created_at": at,
        }
    ]
    if sensitive:
        d.rows["sensitive"] = [
            {"kind": "ssn", "value": fake.ssn(), "collected_at": at},
            {"kind": "drivers_license", "value": fake.bothify("D#######"), "collected_at": at},
            {"kind": "passport", "value": fake.numerify("#########"), "collected_at": at},
        ]
    d.files = sample_files(seed)
    return d


def web_events(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """Cheap, deterministic page interactions: a million of these load in seconds."""
    rnd = random.Random(seed)  # noqa: S311  # synthetic data, not security
    for i in range(count):
        yield {
            "occurred_at": EPOCH + timedelta(seconds=i * 7),
            "session_id": f"s{seed % 9973}-{i // 40}",
            "page_url": "https://www.example.com" + PAGES[rnd.randrange(len(PAGES))],
            "action": ACTIONS[rnd.randrange(len(ACTIONS))],
            "element": ELEMENTS[i % len(ELEMENTS)],
            "referrer": "https://www.example.com/" if i % 3 else None,
            "duration_ms": rnd.randrange(50, 60000),
        }


async def insert_subject(stores: Stores, catalogue: Catalogue, data: SubjectData) -> None:
    """Writes one person into the company's systems, then dsar's subject row and logins."""
    for (store, table), (columns, rows) in company_rows(data).items():
        if rows:
            await write_rows(stores, store, table, columns, rows)
    if data.files:
        media = stores.by_name["media"]
        assert isinstance(media, FilesStore)
        folder = media.root / "users" / str(data.user_id)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = EPOCH.timestamp()
        for name, content in data.files.items():
            (folder / name).write_bytes(content)
            # The file time is the recording time: fixed, so seeding stays deterministic.
            os.utime(folder / name, (stamp, stamp))
    async with scoped(stores.subjects.pool, subject=data.id) as conn:
        await conn.execute(
            "INSERT INTO subjects (id, anchor, handle) VALUES ($1, $2, $3)",
            data.id,
            str(data.user_id),
            data.handle,
        )
        if data.logins:
            await conn.executemany(
                "INSERT INTO identity_links (issuer, sub, subject_id) VALUES ($1, $2, $3)",
                [(iss, sub, data.id) for iss, sub in data.logins],
            )


async def write_rows(
    stores: Stores, store: str, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    # The stores' own pools are read only: the demo company's data goes in on a connection of
    # its own (`dsar seed` refuses any stores but the demo's).
    target = stores.by_name[store]
    if isinstance(target, PostgresStore):
        conn = await asyncpg.connect(stores.config.store(store).dsn)
        try:
            await conn.copy_records_to_table(table, records=rows, columns=columns)
        finally:
            await conn.close()
        return
    from stores.demo_mysql import insert_rows  # only where the demo CRM is on MySQL

    await insert_rows(stores.config.store(store).dsn, table, columns, list(rows))


async def seed(
    stores: Stores,
    catalogue: Catalogue,
    *,
    issuer: str,
    subjects: int = 0,
    heavy_events: int = 0,
) -> list[str]:
    """Loads the demo people (once), `subjects` small synthetic ones and the heavy person."""
    wanted: list[SubjectData] = []
    for handle in DEMO_HANDLES:
        data = build_subject(handle, full=handle != "dave", sensitive=handle in ("alice", "carol"))
        data.logins.append((issuer, handle))
        wanted.append(data)
    # bob and carol signed in on one family computer: its cookie id leads to both of them.
    for data in wanted:
        if data.handle in ("bob", "carol"):
            data.shared_cookies.append(SHARED_COOKIE)
    for n in range(subjects):
        wanted.append(build_subject(f"subject-{n:05d}", full=n % 2 == 0, sensitive=False))
    if heavy_events:
        heavy = build_subject(HEAVY, full=True, sensitive=False, events=0)
        heavy.logins.append((issuer, HEAVY))
        wanted.append(heavy)
    async with scoped(stores.subjects.pool, scope=Scope.SUBJECTS) as conn:
        rows = await conn.fetch(
            "SELECT handle FROM subjects WHERE handle = any($1::text[])",
            [d.handle for d in wanted],
        )
    existing = {r["handle"] for r in rows}
    loaded = []
    for data in wanted:
        if data.handle not in existing:
            await insert_subject(stores, catalogue, data)
            loaded.append(str(data.handle))
    if "bob" in loaded:
        await write_rows(stores, *shared_events())
    if heavy_events:
        await _heavy_events(stores, heavy_events)
    return loaded


async def _heavy_events(stores: Stores, count: int) -> None:
    """Gives the heavy person exactly `count` web-analytics events, reloading if it differs."""
    cookie = cookie_ids(build_subject(HEAVY, full=True, sensitive=False, events=0))[0]
    conn = await asyncpg.connect(stores.config.store("analytics").dsn)
    try:
        have = await conn.fetchval(
            "SELECT count(*) FROM page_events WHERE anonymous_id = $1", cookie
        )
        if have == count:
            return
        await conn.execute("DELETE FROM page_events WHERE anonymous_id = $1", cookie)
        await write_rows(stores, *event_rows(cookie, web_events(7, count)))
        await conn.execute("ANALYZE page_events")
    finally:
        await conn.close()
