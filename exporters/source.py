"""What an exporter hands the bundle: one category file as bytes, and how many records it held.

Store data arrives as COPY output (`stores.streams`); the media store's file list arrives as
rows. Both end up as an `Encoded`: an async iterable of bytes whose `records` is known once it
has been read to the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

Row = Mapping[str, Any]


class Encoded:
    """A category file, streamed; `records` once the stream is exhausted."""

    def __init__(self, chunks: AsyncIterable[bytes], records: Callable[[], int | None]) -> None:
        self._chunks = chunks
        self._records = records

    def __aiter__(self) -> AsyncIterator[bytes]:
        return aiter(self._chunks)

    @property
    def records(self) -> int | None:
        return self._records()


def _default(value: Any) -> Any:
    # orjson writes datetime, date and UUID itself; these are the other types rows may hold.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def dumps(value: Any) -> bytes:
    """JSON as everywhere in the service: orjson, one `default` for the types it lacks."""
    return orjson.dumps(value, default=_default)


def text_of(value: Any) -> str:
    """A scalar as text, written as the JSON files write it (ISO 8601 times, true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, UUID):
        return str(value)  # asyncpg's own UUID subclass is not one orjson writes
    if isinstance(value, datetime | date):
        return orjson.dumps(value).decode()[1:-1]  # a JSON string, without its quotes
    return value if isinstance(value, str) else str(value)
