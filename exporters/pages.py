"""The person's data as web pages: `pages/<category>-<n>.html`, a table of records a page.

`index.html` shows the first records of every category and links to its pages; each page links
back to it and to its neighbours, so a copy is readable in a browser after unzipping, as the
large consumer services' copies are. Pages are rendered from the same snapshot as the data
files, in record order, a page at a time: the records of a page and of the run that fills it
are held at once (fewer than two pages' worth; a media folder's list whole). A
category longer than `MAX_PAGES` pages keeps the rest in its data file alone, and says so.
Every value is escaped; withheld items read "Held, not shown".
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from operator import itemgetter
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from catalogue import Category

PAGE_ROWS = 500
MAX_PAGES = 40
PREVIEW_ROWS = 20  # shown in index.html itself
CAPACITY = PAGE_ROWS * MAX_PAGES
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;padding:0 1rem;max-width:80rem;"
    "line-height:1.5}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}nav a{margin-right:1rem}"
)


class Pace(Protocol):
    """Called by a bundle between its slices of work, with the bytes the slice just read or
    made (a chunk of a data file, a web page; 0 for work that adds none): where an export may
    give way to small requests (domain/budget.py). `measured=False`: bytes of another kind of
    work than a data file's (a folder's files, read from disk at several times a COPY's pace),
    which must not be taken for the pace of the exports."""

    def __call__(self, size: int = 0, *, measured: bool = True) -> Awaitable[None]: ...


async def no_pace(size: int = 0, *, measured: bool = True) -> None:
    """The default: never waits."""
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


# Join the cells and the records of a page before they are escaped together (`rows_html`).
# PostgreSQL text holds no NUL but may hold \x01, and rows built in Python either: a page whose
# values hold a separator is rendered a record at a time.
_SEP = "\x00"
_ROW = "\x01"
_BETWEEN = "</td><td>"
_NEXT = "</td></tr><tr><td>"


_NUMBERS = frozenset({int, float})
_NULLABLE_TEXT = frozenset({str, type(None)})


def _texts(values: Sequence[Any]) -> Sequence[str]:
    """The cells' text of one column of a run of records (`_plain` of each), a column at a
    time: a column's values are nearly always of one or two kinds."""
    kinds = set(map(type, values))
    if kinds == {str}:
        return values
    if kinds <= _NUMBERS:
        return list(map(str, values))
    if kinds <= _NULLABLE_TEXT:
        return ["" if v is None else v for v in values]
    return [v if v.__class__ is str else _plain(v) for v in values]


def _cells(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """A record's values of these columns, in order; KeyError for a column it lacks."""
    if len(names) == 1:
        name = names[0]
        return lambda r: (r[name],)
    return itemgetter(*names)


def rows_html(
    cols: Sequence[tuple[str, str]], media: bool = False
) -> Callable[[Sequence[Mapping[str, Any]]], str]:
    """The table rows (`row_html`) of a run of records of these columns, one after the other;
    made once per category.

    The records' cells are joined with NUL between cells and \x01 between records, escaped in
    one call, then the separators become cell and row boundaries: the same text as `row_html`
    a record at a time, in less than half of its time (the 40 pages of a million web-analytics
    events, 500 records of 8 cells each: 88 ms here with their parsing, against 185 ms a record
    at a time). Held columns, media links, no columns at all and values holding a separator
    take `row_html`."""
    names = [name for name, _ in cols]
    held = [name.endswith("_held") for name in names]
    if media or any(held) or not names:
        return lambda rows: "".join([row_html(cols, r, media) for r in rows])
    separators = len(names) - 1

    cells = _cells(names)

    def render(rows: Sequence[Mapping[str, Any]]) -> str:
        if not rows:
            return ""
        try:
            records = [cells(r) for r in rows]
        except KeyError:  # a record without some column: its cell is empty
            records = [[r.get(name) for name in names] for r in rows]
        columns = [_texts(c) for c in zip(*records, strict=True)]
        text = _ROW.join(map(_SEP.join, zip(*columns, strict=True)))
        if text.count(_SEP) != separators * len(rows) or text.count(_ROW) != len(rows) - 1:
            return "".join([row_html(cols, r, media) for r in rows])
        body = escape(text, quote=True).replace(_SEP, _BETWEEN).replace(_ROW, _NEXT)
        return "<tr><td>" + body + "</td></tr>"

    return render


def _table(category: Category, body: str) -> str:
    head = "".join(f'<th scope="col">{_e(title)}</th>' for _, title in columns_of(category))
    return (
        f"<table><caption>{_e(category.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def table(
    category: Category, rows: Sequence[Mapping[str, Any]], media: bool = False, prefix: str = "../"
) -> str:
    cols = columns_of(category)
    return _table(category, "".join([row_html(cols, r, media, prefix) for r in rows]))


def page_path(category: Category, n: int) -> str:
    return f"pages/{category.key}-{n}.html"


def render_page(
    category: Category, n: int, body: str, first: int, count: int, *, more: bool
) -> bytes:
    """The page of `body`: `count` records from the `first`, already rendered as table rows
    (`rows_html`)."""
    nav = ['<a href="../index.html">Back to the summary</a>']
    if n > 1:
        nav.append(f'<a href="{category.key}-{n - 1}.html">Previous page</a>')
    if more:
        nav.append(f'<a href="{category.key}-{n + 1}.html">Next page</a>')
    links = "".join(nav)
    last = first + count - 1
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


Records = Sequence[Mapping[str, Any]]


async def json_rows(lines: AsyncIterable[bytes]) -> AsyncIterator[list[dict[str, Any]]]:
    """Records from JSON lines (one object a line), across chunk boundaries, in runs of at most
    `PAGE_ROWS`: each run parsed in one call, as the elements of one JSON array."""
    rest = b""
    async for chunk in lines:
        *whole, rest = (rest + chunk).split(b"\n")
        for start in range(0, len(whole), PAGE_ROWS):
            yield _parsed(whole[start : start + PAGE_ROWS])
    if rest.strip():
        yield _parsed([rest])


def _parsed(lines: list[bytes]) -> list[dict[str, Any]]:
    try:
        records: list[dict[str, Any]] = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        # A blank line (skipped) or a broken one (its own error): a line at a time.
        records = [orjson.loads(line) for line in lines if line.strip()]
    return records


async def pages(
    category: Category,
    batches: AsyncIterable[Records],
    paged: Paged,
    pace: Pace = no_pace,
) -> AsyncIterator[tuple[str, bytes]]:
    """(path, html) of each page. `batches` (runs of records, in order) is read to its end
    whatever happens (a COPY left half read would spoil the snapshot's transaction): give it at
    most `CAPACITY + 1` records.

    A page is rendered when its last record has arrived, with a pace point after each run of
    records and each page: slices of the event loop of a few milliseconds at most."""
    render = rows_html(columns_of(category), category.key == "recordings")
    n, first = 0, 1
    buffer: list[Mapping[str, Any]] = []
    async for batch in batches:
        await pace(0)  # the batch's bytes count where they were read, in the data file
        if paged.truncated:
            continue  # past the last page: the data file holds it
        rows = list(batch)
        if len(paged.preview) < PREVIEW_ROWS:
            paged.preview += [dict(r) for r in rows[: PREVIEW_ROWS - len(paged.preview)]]
        while rows:
            room = PAGE_ROWS - len(buffer)
            buffer += rows[:room]
            rows = rows[room:]
            if len(buffer) < PAGE_ROWS or not rows:
                # A full page waits for one more record, which tells whether another follows.
                break
            n += 1
            more = n < MAX_PAGES
            path = page_path(category, n)
            paged.pages.append(path)
            html = render_page(category, n, render(buffer), first, len(buffer), more=more)
            yield path, html
            await pace(len(html))
            first += len(buffer)
            paged.shown += len(buffer)
            buffer = []
            if not more:
                paged.truncated = True
                break
    if buffer and not paged.truncated:
        n += 1
        path = page_path(category, n)
        paged.pages.append(path)
        paged.shown += len(buffer)
        yield path, render_page(category, n, render(buffer), first, len(buffer), more=False)


async def listed(rows: Records) -> AsyncIterator[Records]:
    yield rows
