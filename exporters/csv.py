"""CSV exports: RFC 4180 quoting, UTF-8 with a byte-order mark, a header row, one file per
category.

Every file starts with the UTF-8 byte-order mark (EF BB BF): without it a spreadsheet on
Windows reads the file as its local code page and shows "Zoë" as "ZoÃ«". Python reads such a
file with `open(path, encoding="utf-8-sig", newline="")` and `csv.reader`.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
(OWASP, "CSV Injection"), so a spreadsheet shows it instead of running it as a formula. Store
data is neutralised on COPY's bytes (`stores._formulas`; a MySQL store in its SQL), so it stays
on the COPY fast path; rows built in Python (the media store's file list) go through
`neutralise` here. The manifest states the rule (`FORMULA_RULE`). Text cells of store data are
always quoted, so a NULL is an empty cell and the empty string is `""`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from catalogue import Category
from exporters.jsonschema import record_schema
from exporters.source import Encoded, Row, text_of
from stores.interface import Snapshot
from stores.mapping import Person
from stores.streams import FORMULA_STARTS, columns

FORMULA_RULE = {
    "applies_to": "CSV files: every text cell",
    "starts_with": list(FORMULA_STARTS),
    "rule": (
        "A text cell that starts with =, +, -, @, a tab or a carriage return is written with a "
        "leading apostrophe ('), so that a spreadsheet shows it as text instead of running it "
        "as a formula. To get the value exactly as we hold it, remove that one apostrophe. The "
        "JSON files hold every value unchanged."
    ),
    "reference": "OWASP, CSV Injection",
    "encoding": "UTF-8 with a byte-order mark (EF BB BF) at the start of every CSV file",
}


BOM = b"\xef\xbb\xbf"


async def with_bom(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The file's bytes after the UTF-8 byte-order mark; closes the source when stopped."""
    yield BOM
    source = aiter(chunks)
    try:
        async for chunk in source:
            yield chunk
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested values as dotted columns: {"a": {"b": 1}, "c": [2]} → a.b = 1, c.0 = 2."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        for i, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}.{i}")
    else:
        yield prefix, value


def cell(value: Any) -> str:
    return neutralise(value) if isinstance(value, str) else text_of(value)


def csv_text(first: Sequence[str], rows: Sequence[Row]) -> bytes:
    """Rows built in Python as CSV (no byte-order mark): the `first` columns, then any other
    key the flattened rows hold, in the order met."""
    flat = [dict(flatten(r)) for r in rows]
    header = list(first)
    for r in flat:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    # LF line ends, as PostgreSQL writes the store files; quoting is RFC 4180's.
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in flat:
        writer.writerow([cell(r.get(k)) for k in header])
    return buf.getvalue().encode()


async def _rows(category: Category, rows: Sequence[Row]) -> AsyncIterator[bytes]:
    yield csv_text(columns(category), rows)


class CsvExporter:
    name = "csv"
    media_type = "text/csv; charset=utf-8; header=present"
    extension = "csv"
    manifest_notes: Mapping[str, Any] = {"csv_formula_rule": FORMULA_RULE}

    def table(self, snapshot: Snapshot, key: str, person: Person) -> Encoded:
        stream = snapshot.csv(key, person)
        return Encoded(with_bom(stream), lambda: stream.records)

    def rows(self, category: Category, rows: Sequence[Row]) -> Encoded:
        return Encoded(with_bom(_rows(category, rows)), lambda: len(rows))

    def schema(self, category: Category) -> dict[str, Any]:
        return record_schema(category, typed=False)
