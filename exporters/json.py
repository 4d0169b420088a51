"""JSON exports: each category file is one array of records (RFC 8259, UTF-8)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any

from catalogue import Category
from exporters.jsonschema import record_schema
from exporters.source import Encoded, Row, dumps
from stores.interface import Snapshot
from stores.mapping import Person


async def json_array(lines: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Turns one-object-per-line COPY output into a JSON array, chunk by chunk.

    JSON text never holds a raw line feed (RFC 8259 §7 escapes control characters), so every
    LF in the stream ends a record and becomes the separator between two.
    """
    yield b"["
    owed = b"\n"  # what goes before the next record: nothing mid-record
    rows = False
    async for chunk in lines:
        ends = chunk.endswith(b"\n")
        body = (chunk[:-1] if ends else chunk).replace(b"\n", b",\n")
        if body:
            rows = True
            yield owed + body if owed else body
            owed = b""
        if ends:
            owed = b",\n" if rows else b"\n"
    yield b"\n]\n" if rows else b"]\n"


async def _rows(rows: Sequence[Row]) -> AsyncIterator[bytes]:
    if not rows:
        yield b"[]\n"
        return
    yield b"[\n" + b",\n".join(dumps(dict(r)) for r in rows) + b"\n]\n"


class JsonExporter:
    name = "json"
    media_type = "application/json"
    extension = "json"
    manifest_notes: Mapping[str, Any] = {}

    def table(self, snapshot: Snapshot, key: str, person: Person) -> Encoded:
        lines = snapshot.json_lines(key, person)
        return Encoded(json_array(lines), lambda: lines.records)

    def rows(self, category: Category, rows: Sequence[Row]) -> Encoded:
        return Encoded(_rows(rows), lambda: len(rows))

    def schema(self, category: Category) -> dict[str, Any]:
        return record_schema(category, typed=True)
