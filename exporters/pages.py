"""The person's data as web pages: `pages/<category>-<n>.html`, a table of records a page.

`index.html` shows the first records of every category and links to its pages; each page links
back to it and to its neighbours, so a copy is readable in a browser after unzipping, as the
large consumer services' copies are. Pages are rendered from the same snapshot as the data
files, in record order, a page at a time: at most `PAGE_ROWS` records are held at once. A
category longer than `MAX_PAGES` pages keeps the rest in its data file alone, and says so.
Every value is escaped; withheld items read "Held, not shown".
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

import orjson

from catalogue import Category

PAGE_ROWS = 500
MAX_PAGES = 40
PREVIEW_ROWS = 20  # shown in index.html itself
CAPACITY = PAGE_ROWS * MAX_PAGES
# Records rendered between two pace points: a slice of a few milliseconds of the event loop.
PACE_ROWS = 50
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;padding:0 1rem;max-width:80rem;"
    "line-height:1.5}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}nav a{margin-right:1rem}"
)


# Called by a bundle between its slices of work: where an export may give way to small
# requests (domain/budget.py). The default never waits.
Pace = Callable[[], Awaitable[None]]


async def no_pace() -> None:
    return None


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _cell(name: str, value: Any) -> str:
    if name.endswith("_held"):
        return "Held, not shown" if value in (True, "true") else "Not held"
    return escape(_plain(value), quote=True)


def _plain(value: Any) -> str:
    """A cell's text before escaping (a column other than `_held`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def columns_of(category: Category) -> list[tuple[str, str]]:
    """(column in the record, heading) of each field, as the data files name them."""
    return [(f.name + "_held" if f.withheld else f.name, f.description) for f in category.fields]


def row_html(
    cols: Sequence[tuple[str, str]], r: Mapping[str, Any], media: bool, prefix: str = "../"
) -> str:
    cells = []
    for name, _ in cols:
        value = _cell(name, r.get(name))
        if media and name == "file_name" and r.get(name):
            value = f'<a href="{prefix}media/{_e(quote(str(r[name])))}">{value}</a>'
        cells.append(f"<td>{value}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


# Joins one record's cells before they are escaped together (`rows_html`): PostgreSQL text can
# hold every character but NUL, so a record whose values hold it is rendered cell by cell.
_SEP = "\x00"
_BETWEEN = "</td><td>"


def rows_html(
    cols: Sequence[tuple[str, str]], media: bool = False
) -> Callable[[Mapping[str, Any]], str]:
    """`row_html` for records of these columns, made once per category.

    A record's cells are joined with NUL and escaped in one call, then the NULs become cell
    boundaries: the same text as `row_html`, in about a third of its time (a page of web
    analytics is 500 records of 8 cells). Held columns, media links, no columns at all and a
    value holding NUL take `row_html`."""
    names = [name for name, _ in cols]
    held = [name.endswith("_held") for name in names]
    if media or any(held) or not names:
        return lambda r: row_html(cols, r, media)
    separators = len(names) - 1

    def render(r: Mapping[str, Any]) -> str:
        values = [r.get(name) for name in names]
        text = _SEP.join([v if v.__class__ is str else _plain(v) for v in values])
        if text.count(_SEP) != separators:
            return row_html(cols, r, media)
        return "<tr><td>" + escape(text, quote=True).replace(_SEP, _BETWEEN) + "</td></tr>"

    return render


def _table(category: Category, body: Sequence[str]) -> str:
    head = "".join(f'<th scope="col">{_e(title)}</th>' for _, title in columns_of(category))
    return (
        f"<table><caption>{_e(category.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def table(
    category: Category, rows: Sequence[Mapping[str, Any]], media: bool = False, prefix: str = "../"
) -> str:
    cols = columns_of(category)
    return _table(category, [row_html(cols, r, media, prefix) for r in rows])


def page_path(category: Category, n: int) -> str:
    return f"pages/{category.key}-{n}.html"


def render_page(category: Category, n: int, body: Sequence[str], first: int, more: bool) -> bytes:
    """The page of `body`, its records already rendered as table rows (`row_html`)."""
    nav = ['<a href="../index.html">Back to the summary</a>']
    if n > 1:
        nav.append(f'<a href="{category.key}-{n - 1}.html">Previous page</a>')
    if more:
        nav.append(f'<a href="{category.key}-{n + 1}.html">Next page</a>')
    links = "".join(nav)
    last = first + len(body) - 1
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(category.title)}: page {n}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>{_e(category.title)}</h1>
<p>Records {first:,} to {last:,}, page {n}.</p>
<nav>{links}</nav>
{_table(category, body)}
<nav>{links}</nav>
</main>
</body>
</html>
""".encode()


@dataclass(slots=True)
class Paged:
    """What the pages of one category hold, for the manifest and index.html."""

    pages: list[str] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    shown: int = 0
    truncated: bool = False


async def json_rows(lines: AsyncIterable[bytes]) -> AsyncIterator[dict[str, Any]]:
    """Records from JSON lines (one object a line), across chunk boundaries."""
    rest = b""
    async for chunk in lines:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        for line in whole:
            if line.strip():
                yield orjson.loads(line)
    if rest.strip():
        yield orjson.loads(rest)


async def pages(
    category: Category,
    rows: AsyncIterable[Mapping[str, Any]],
    paged: Paged,
    pace: Pace = no_pace,
) -> AsyncIterator[tuple[str, bytes]]:
    """(path, html) of each page. `rows` is read to its end whatever happens (a COPY left half
    read would spoil the snapshot's transaction): give it at most `CAPACITY + 1` records.

    Each record is rendered as it arrives, with a pace point every `PACE_ROWS` records, so
    that a page is never one long block of the event loop."""
    render = rows_html(columns_of(category), category.key == "recordings")
    n, first, seen = 0, 1, 0
    buffer: list[str] = []
    async for row in rows:
        seen += 1
        if seen % PACE_ROWS == 0:
            await pace()
        if paged.truncated:
            continue  # past the last page: the data file holds it
        if len(paged.preview) < PREVIEW_ROWS:
            paged.preview.append(dict(row))
        if len(buffer) == PAGE_ROWS:
            n += 1
            more = n < MAX_PAGES
            path = page_path(category, n)
            paged.pages.append(path)
            yield path, render_page(category, n, buffer, first, more=more)
            first += len(buffer)
            paged.shown += len(buffer)
            buffer = []
            if not more:
                paged.truncated = True
                continue
        buffer.append(render(row))
    if buffer:
        n += 1
        path = page_path(category, n)
        paged.pages.append(path)
        paged.shown += len(buffer)
        yield path, render_page(category, n, buffer, first, more=False)


async def listed(rows: Sequence[Mapping[str, Any]]) -> AsyncIterator[Mapping[str, Any]]:
    for r in rows:
        yield r
