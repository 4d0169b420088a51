"""How `pages()` splits a category's records into web pages, whatever runs they arrive in: a
page every `PAGE_ROWS` records, the last page without a link onwards, `MAX_PAGES` pages at most
(the rest said to be in the data file alone), the first `PREVIEW_ROWS` kept for index.html; each
page's rows exactly what `row_html` renders a record at a time. And `json_rows`: the records of
JSON lines split anywhere across chunks, in runs of at most a page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest

from catalogue import Catalogue
from exporters.pages import (
    CAPACITY,
    MAX_PAGES,
    PAGE_ROWS,
    PREVIEW_ROWS,
    Paged,
    columns_of,
    json_rows,
    page_path,
    pages,
    render_page,
    row_html,
)


def _records(catalogue: Catalogue, n: int) -> list[dict[str, Any]]:
    names = [name for name, _ in columns_of(catalogue.category("web_analytics"))]
    return [{name: (i if name == "id" else f"<{name} {i}>") for name in names} for i in range(n)]


async def _runs(records: list[dict[str, Any]], size: int) -> AsyncIterator[list[dict[str, Any]]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


async def _pages(catalogue: Catalogue, records: list[dict[str, Any]], size: int) -> Any:
    paged = Paged()
    category = catalogue.category("web_analytics")
    made = [p async for p in pages(category, _runs(records, size), paged)]
    return category, made, paged


@pytest.mark.parametrize(
    ("count", "size"),
    [
        (0, 7),
        (1, 7),
        (PAGE_ROWS - 1, 1),
        (PAGE_ROWS, PAGE_ROWS),
        (PAGE_ROWS + 1, PAGE_ROWS),
        (2 * PAGE_ROWS, 333),
        (CAPACITY, PAGE_ROWS),
        (CAPACITY + 1, 1000),
        (CAPACITY + 1, 1),
        (CAPACITY + 777, 777),
    ],
)
async def test_pages_split_any_runs_as_a_record_at_a_time(
    catalogue: Catalogue, count: int, size: int
) -> None:
    records = _records(catalogue, count)
    category, made, paged = await _pages(catalogue, records, size)
    shown = min(count, CAPACITY)
    n_pages = -(-shown // PAGE_ROWS)
    assert len(made) == n_pages <= MAX_PAGES
    assert paged.pages == [page_path(category, n) for n in range(1, n_pages + 1)]
    assert paged.shown == shown
    assert paged.truncated == (count > CAPACITY)
    assert paged.preview == records[:PREVIEW_ROWS]
    cols = columns_of(category)
    for n, (path, html) in enumerate(made, start=1):
        first = (n - 1) * PAGE_ROWS
        on_page: Sequence[dict[str, Any]] = records[first : min(first + PAGE_ROWS, shown)]
        body = "".join(row_html(cols, r, False) for r in on_page)
        more = n < n_pages
        assert path == page_path(category, n)
        assert html == render_page(category, n, body, first + 1, len(on_page), more=more)
        assert (f"{category.key}-{n + 1}.html" in html.decode()) == more


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_json_lines_split_anywhere_come_back_in_runs_of_a_page_at_most() -> None:
    records = [{"id": i, "text": "a\nb \u00e9" * (i % 3)} for i in range(1234)]
    text = b"\n".join(orjson.dumps(r) for r in records) + b"\n"
    for size in (1, 100, 4096, len(text)):
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        runs = [run async for run in json_rows(_chunks(parts))]
        assert [r for run in runs for r in run] == records
        assert max(len(run) for run in runs) <= PAGE_ROWS


async def test_blank_lines_are_skipped_and_a_broken_line_is_an_error() -> None:
    runs = [run async for run in json_rows(_chunks([b'{"a":1}\n\n  \n{"a":2}\n{"a":3}']))]
    assert [r for run in runs for r in run] == [{"a": 1}, {"a": 2}, {"a": 3}]
    with pytest.raises(orjson.JSONDecodeError):
        [run async for run in json_rows(_chunks([b'{"a":1}\n{"a":\n']))]
