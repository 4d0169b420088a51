"""The bundle's members and manifest: counts, sizes and digests that match the files and the DB."""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser

import pytest

from catalogue import Catalogue
from exporters import BundleError, UnknownFormat
from stores.registry import Stores
from stores.seed import subject_id, user_id
from tests.exporters.conftest import Bundle, bundle_of, collect, make_bundle

CONTRACT_KEYS = {
    "format_version",
    "export_id",
    "subject_id",
    "generated_at",
    "purpose",
    "format",
    "categories",
    "withheld",
    "stores",
    "rights",
    "transfers",
    "controller",
    "representatives",
}


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_manifest_matches_the_files_and_the_database(
    fmt: str, alice_json: Bundle, alice_csv: Bundle, stores: Stores, catalogue: Catalogue
) -> None:
    b = {"json": alice_json, "csv": alice_csv}[fmt]
    m = b.manifest
    assert CONTRACT_KEYS <= set(m)
    assert (m["format"], m["purpose"], m["subject_id"]) == (fmt, "access", str(subject_id("alice")))
    counts = (await stores.counts([subject_id("alice")]))[subject_id("alice")]
    assert list(m["categories"]) == list(catalogue.keys)  # access: every category
    listed = set()
    for key, c in m["categories"].items():
        assert c["records"] == counts.get(key, 0), key
        for f in [*c["files"], c["schema"]]:
            body = b.files[f["path"]]
            assert f["bytes"] == len(body), f["path"]
            assert f["sha256"] == hashlib.sha256(body).hexdigest(), f["path"]
            listed.add(f["path"])
        assert f"data/{key}.{fmt}" in listed
        pages = {f["path"]: f for f in m["files"] if f["path"].startswith(f"pages/{key}-")}
        assert list(pages) == c["pages"]
        for path, f in pages.items():
            assert f["sha256"] == hashlib.sha256(b.files[path]).hexdigest(), path
            listed.add(path)
        assert bool(c["pages"]) == bool(c["records"]), key  # every record is on a page
        cat = catalogue.category(key)
        assert [t["key"] for t in c["purposes"]] == [t.key for t in cat.purposes]
        assert c["retention"]["title"] == cat.retention.title
        assert {"sources", "recipients", "shared_with", "legal_bases"} <= set(c)
    assert {f["path"] for f in m["files"]} == listed
    # Every member is accounted for; the manifest and the page come last.
    assert set(b.files) == listed | {"manifest.json", "index.html"}
    assert [i.filename for i in b.zip.infolist()][-2:] == ["manifest.json", "index.html"]
    assert {f"media/{name}" for name in ("meeting-photo.png", "sales-call-audio.wav")} <= listed


async def test_media_are_the_stored_files(alice_json: Bundle, stores: Stores) -> None:
    folder = stores.files("recordings").root / "users" / str(user_id("alice"))
    for path in folder.iterdir():
        assert alice_json.files[f"media/{path.name}"] == path.read_bytes()


async def test_stores_searched_are_named_with_their_snapshot_time(alice_json: Bundle) -> None:
    stores = {s["name"]: s for s in alice_json.manifest["stores"]}
    assert set(stores) == {"app", "billing", "analytics", "crm", "media"}
    assert "REPEATABLE READ" in stores["analytics"]["consistency"]
    assert all(s["searched_at"].startswith("20") for s in stores.values())


async def test_rights_transfers_and_contact_come_from_the_catalogue(
    alice_json: Bundle, catalogue: Catalogue
) -> None:
    m = alice_json.manifest
    assert [r["key"] for r in m["rights"]] == [r.key for r in catalogue.rights]
    assert "complaint" in {r["key"] for r in m["rights"]}
    assert m["controller"]["address"] == catalogue.controller.address
    assert len(m["representatives"]) == len(catalogue.representatives)
    assert len(m["transfers"]["safeguards"]) == len(catalogue.transfers.safeguards)


async def test_portability_leaves_out_inferred_data_and_says_why(
    stores: Stores, catalogue: Catalogue
) -> None:
    b = await make_bundle(stores, catalogue, subject_id("alice"), "json", "portability")
    assert "geolocation" not in b.manifest["categories"]
    assert not any("geolocation" in name for name in b.files)
    left = {x["category"]: x["reason"] for x in b.manifest["left_out"]}
    assert set(left) == {c.key for c in catalogue if not c.portable} == {"geolocation"}
    assert "Art. 20" in left["geolocation"]
    assert set(b.manifest["categories"]) == {c.key for c in catalogue if c.portable}


async def test_a_chosen_subset_lists_the_rest_as_not_requested(
    stores: Stores, catalogue: Catalogue
) -> None:
    b = await make_bundle(stores, catalogue, subject_id("bob"), "csv", categories=["profile"])
    assert list(b.manifest["categories"]) == ["profile"]
    assert len(b.manifest["left_out"]) == len(catalogue) - 1
    assert {n for n in b.files if n.startswith("data/")} == {"data/profile.csv"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fmt": "xml"}, UnknownFormat),
        ({"fmt": "json", "purpose": "marketing"}, BundleError),
        ({"fmt": "json", "categories": ["profile", "nope"]}, BundleError),
    ],
)
async def test_bad_requests_fail_before_any_byte(
    stores: Stores, catalogue: Catalogue, kwargs: dict[str, object], error: type[Exception]
) -> None:
    chunks = bundle_of(stores, catalogue, subject_id("alice"), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error):
        await collect(chunks)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.lang = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")


async def test_index_html_is_a_page_for_a_person(alice_csv: Bundle) -> None:
    html = alice_csv.files["index.html"].decode()
    assert html.startswith("<!DOCTYPE html>")
    page = _Page()
    page.feed(html)
    assert page.lang == "en"
    assert {"title", "h1", "h2", "table"} <= set(page.tags)
    # per category what we say of it and (where held) its first records, plus the overview
    cats = alice_csv.manifest["categories"]
    held = [k for k, c in cats.items() if c["records"]]
    assert page.tags.count("table") == len(cats) + len(held) + 1
    files = {f["path"] for f in alice_csv.manifest["files"]}
    local = {href for href in page.links if not href.startswith(("#", "http", "mailto:"))}
    assert files <= local <= files | {"manifest.json"}
    assert "apostrophe" in html  # the CSV formula rule, in plain words
    assert "7024(d)" in html


async def test_index_html_escapes_what_it_shows(stores: Stores, catalogue: Catalogue) -> None:
    from exporters.html import render_index

    m = (await make_bundle(stores, catalogue, subject_id("dave"), "json")).manifest
    m["export_id"] = '<script>alert("x")</script>'
    m["categories"]["profile"]["title"] = "a & <b>"
    html = render_index(m)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "a &amp; &lt;b&gt;" in html


async def test_schema_files_describe_each_data_file(
    alice_json: Bundle, catalogue: Catalogue
) -> None:
    import orjson

    for c in catalogue:
        schema = orjson.loads(alice_json.files[f"schema/{c.key}.schema.json"])
        assert schema["$schema"].startswith("https://json-schema.org/")
        records = orjson.loads(alice_json.files[f"data/{c.key}.json"])
        props = schema["items"]["properties"]
        for record in records:
            assert set(record) == set(props), c.key
        for f in c.withheld_fields:
            assert props[f.name + "_held"]["type"] == "boolean"
            assert f.name not in props


async def test_a_delta_says_how_many_records_it_could_not_date(
    stores: Stores, catalogue: Catalogue
) -> None:
    """A delta (`since`, every partner transfer after the first) holds the records dated after
    it. A record whose time is empty may or may not be new: the delta leaves it out and the
    manifest and index.html say how many, and why; the full copy holds them."""
    import asyncpg

    from exporters.bundle import UNDATED
    from stores.seed import EPOCH
    from tests.exporters.conftest import new_subject

    subject = await new_subject(stores, catalogue, events=30)
    person = await stores.person_of(subject.id)
    assert person is not None
    owner = await asyncpg.connect(stores.config.store("analytics").dsn)
    try:
        # The demo's events always carry a time; a company's table may not.
        await owner.execute("ALTER TABLE page_events ALTER COLUMN ts DROP NOT NULL")
        await owner.execute(
            "UPDATE page_events SET ts = NULL WHERE id IN (SELECT id FROM page_events "
            "WHERE anonymous_id = any($1) ORDER BY id LIMIT 3)",
            list(person.of("anonymous_id")),
        )
        delta = await make_bundle(stores, catalogue, subject.id, "json", since=EPOCH)
        full = await make_bundle(stores, catalogue, subject.id, "json")
    finally:
        await owner.execute("DELETE FROM page_events WHERE ts IS NULL")
        await owner.execute("ALTER TABLE page_events ALTER COLUMN ts SET NOT NULL")
        await owner.close()
    note = {
        "category": "web_analytics",
        "what": "records with no date",
        "count": 3,
        "reason": UNDATED,
    }
    assert delta.manifest["categories"]["web_analytics"]["records"] == 27
    assert note in delta.manifest["held_not_included"]
    assert [n for n in delta.manifest["held_not_included"] if n["what"] == note["what"]] == [note]
    assert (
        f"3 records with no date in Web Analytics: {UNDATED}" in delta.files["index.html"].decode()
    )
    assert full.manifest["categories"]["web_analytics"]["records"] == 30
    assert not [n for n in full.manifest["held_not_included"] if n["what"] == note["what"]]
    # One is said as one.
    from exporters.html import render_index

    delta.manifest["held_not_included"][-1]["count"] = 1
    assert f"1 record with no date in Web Analytics: {UNDATED}" in render_index(delta.manifest)


async def test_a_bundle_paces_every_byte_it_reads_and_keeps_a_folders_files_out_of_the_measure(
    stores: Stores, catalogue: Catalogue
) -> None:
    """Every byte of a data file and of a folder's files is counted at a pace point
    (domain/budget.py keeps the exports' share on them); the files' are marked not to be taken
    for the exports' pace (read from disk, they pass at several times a COPY's speed)."""
    calls: list[tuple[int, bool]] = []

    async def pace(size: int = 0, *, measured: bool = True) -> None:
        calls.append((size, measured))

    again = await make_bundle(stores, catalogue, subject_id("alice"), "json", pace=pace)
    folder = stores.files("recordings").root / "users" / str(user_id("alice"))
    media = sum(p.stat().st_size for p in folder.iterdir())
    assert media > 0
    assert sum(size for size, measured in calls if not measured) == media
    data = [f for f in again.manifest["files"] if not f["path"].startswith("media/")]
    events = next(f for f in data if f["path"].startswith("data/web_analytics"))
    assert sum(size for size, measured in calls if measured) >= events["bytes"]
