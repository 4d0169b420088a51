"""A copy a person can read (issue 16, item 8): index.html shows the data itself, category by
category, with the rest on pages; the person's own records held by dsar are in `service/`."""

from __future__ import annotations

import io
import re
import zipfile
from html import escape

import httpx
import orjson
import pytest

from api.devissuer import DevIssuer
from catalogue import Catalogue
from domain.own_records import DESCRIPTIONS, own_records
from exporters import bundle
from exporters.pages import PAGE_ROWS, PREVIEW_ROWS
from stores.registry import Stores
from stores.seed import subject_id
from tests._tokens import TEST_ISSUER
from tests.exporters.conftest import Bundle, make_bundle, new_subject
from tests.test_exports_api import auth, request_export


async def test_index_html_shows_alices_email_and_page_views(alice_json: Bundle) -> None:
    html = alice_json.files["index.html"].decode()
    profile = orjson.loads(alice_json.files["data/profile.json"])[0]
    assert profile["email"] == "alice@example.com"
    assert "alice@example.com" in html
    views = orjson.loads(alice_json.files["data/web_analytics.json"])
    for view in views[:PREVIEW_ROWS]:
        assert escape(view["page_url"], quote=True) in html
    assert "Web page interactions" in html or "Web Analytics" in html
    # Every category's records are on its pages, each page a table of them.
    for key, c in alice_json.manifest["categories"].items():
        rows = sum(alice_json.files[p].decode().count("<tr>") - 1 for p in c["pages"])
        assert rows == c["records"], key
    # Recordings link to their files in the bundle.
    rec = alice_json.files[alice_json.manifest["categories"]["recordings"]["pages"][0]].decode()
    assert 'href="../media/meeting-photo.png"' in rec


async def test_a_large_category_is_paged(stores: Stores, catalogue: Catalogue) -> None:
    many = await new_subject(stores, catalogue, events=PAGE_ROWS * 2 + 7)
    b = await make_bundle(stores, catalogue, many.id, "csv")
    c = b.manifest["categories"]["web_analytics"]
    assert c["records"] == PAGE_ROWS * 2 + 7
    assert c["pages"] == [f"pages/web_analytics-{n}.html" for n in (1, 2, 3)]
    assert c["pages_truncated"] is False
    middle = b.files["pages/web_analytics-2.html"].decode()
    assert 'href="web_analytics-1.html"' in middle and 'href="web_analytics-3.html"' in middle
    assert 'href="../index.html"' in middle
    assert middle.count("<tr>") - 1 == PAGE_ROWS
    last = b.files["pages/web_analytics-3.html"].decode()
    assert "Next page" not in last and last.count("<tr>") - 1 == 7
    # The pages hold the records of the data file, in its order.
    first_rows = re.findall(r"<tr><td>(\d+)</td>", b.files["pages/web_analytics-1.html"].decode())
    csv_ids = [
        line.split(",", 1)[0]
        for line in b.files["data/web_analytics.csv"].decode("utf-8-sig").splitlines()[1:]
    ]
    assert first_rows == csv_ids[:PAGE_ROWS]


async def test_pages_held_ahead_and_pages_read_after_the_data_file_are_the_same(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page records too long to hold are read again after the data file: the same pages."""
    many = await new_subject(stores, catalogue, events=PAGE_ROWS + 3)
    ahead = await make_bundle(stores, catalogue, many.id, "csv")
    monkeypatch.setattr(bundle, "AHEAD_BYTES", 0)
    after = await make_bundle(stores, catalogue, many.id, "csv")
    pages = [p for c in ahead.manifest["categories"].values() for p in c["pages"]]
    assert "pages/web_analytics-2.html" in pages
    assert [p for c in after.manifest["categories"].values() for p in c["pages"]] == pages
    for path in pages:
        assert after.files[path] == ahead.files[path], path
    assert after.files["index.html"].count(b"<tr>") == ahead.files["index.html"].count(b"<tr>")


async def test_the_service_folder_holds_what_dsar_itself_keeps(
    client: httpx.AsyncClient, issuer: DevIssuer, stores: Stores, catalogue: Catalogue
) -> None:
    data = await new_subject(stores, catalogue)
    sid = data.id
    await stores.subjects.link(sid, TEST_ISSUER, str(data.handle))
    token = issuer.mint("customer", str(data.handle))
    _, export = await request_export(client, token)
    r = await client.get(export["downloadUrl"], headers=auth(token))
    assert r.status_code == 200
    z = zipfile.ZipFile(io.BytesIO(r.content))
    m = orjson.loads(z.read("manifest.json"))
    assert set(m["service"]) == set(DESCRIPTIONS)
    logins = orjson.loads(z.read("service/logins.json"))
    assert [(x["issuer"], x["sub"]) for x in logins] == [(TEST_ISSUER, data.handle)]
    copies = orjson.loads(z.read("service/exports.json"))
    assert [x["id"] for x in copies] == [export["id"]]  # this very copy, as it is being made
    assert m["service"]["exports"]["file"]["path"] == "service/exports.json"
    html = z.read("index.html").decode()
    assert "What this service itself holds about you" in html
    assert 'href="service/logins.json"' in html


async def test_own_records_read_the_persons_grants_and_access(stores: Stores) -> None:
    records = await own_records(stores.subjects.pool, subject_id("carol"))
    assert set(records) == set(DESCRIPTIONS)
    assert all(isinstance(v, list) for v in records.values())


async def test_service_files_in_csv_too(stores: Stores) -> None:
    from exporters.service import service_files

    records = await own_records(stores.subjects.pool, subject_id("carol"))
    records["exports"] = [{"id": (await stores.subjects.pool.fetchval("SELECT gen_random_uuid()"))}]
    (path, body, n), *_ = service_files({"exports": records["exports"]}, "csv")
    assert path == "service/exports.csv" and n == 1
    assert body.startswith(b"\xef\xbb\xbfid\n")
