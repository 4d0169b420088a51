"""The one store interface: what every kind of table store (PostgreSQL, MySQL) does.

GraphQL resolvers, the right-to-know counts, exports, partner deltas, support search and
unmasking all read through it; nothing outside the store kinds writes SQL against a store.
Files stores (`stores.files`) list and read files instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from catalogue import Category
from stores.config import KeyConfig, SearchConfig
from stores.mapping import Fields, Person, Position, Row

if TYPE_CHECKING:
    from stores.streams import Held


class RecordStream(Protocol):
    """A category's records as bytes; `records` is their number once the stream is read."""

    records: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...


class Snapshot(Protocol):
    """One store as of one instant, for an export."""

    taken_at: datetime
    description: str
    since: datetime | None
    released: dict[str, Category]

    def csv(self, key: str, person: Person) -> RecordStream: ...
    def json_lines(self, key: str, person: Person, limit: int | None = None) -> RecordStream: ...
    async def held(self, key: str, person: Person) -> list[Held]: ...
    async def undated(self, key: str, person: Person) -> int:
        """How many of the person's records a delta (`since`) leaves out for want of a time."""
        ...

    def beside(self) -> AbstractAsyncContextManager[Snapshot | None]:
        """The same instant on a second connection, or None (read here, one after another)."""
        ...


class TableStore(Protocol):
    """`single` and `page` read a category's records; with `fields`, only those catalogue
    fields' columns (what a planned GraphQL operation asks for), else every field."""

    name: str
    kind: str
    statements: int

    async def close(self) -> None: ...
    async def ping(self) -> bool: ...
    async def resolve(self, key: KeyConfig, person: Person) -> tuple[list[str], int]: ...
    async def resolve_all(
        self, keys: Sequence[KeyConfig], person: Person
    ) -> list[tuple[list[str], int]]: ...
    async def anchor_value(self, key: KeyConfig, value: str) -> str | None: ...
    async def search(self, search: SearchConfig, email: str, limit: int) -> list[str]: ...
    async def single(
        self, key: str, person: Person, fields: Fields | None = None
    ) -> Row | None: ...
    async def page(
        self,
        key: str,
        person: Person,
        limit: int,
        after: Position | None,
        fields: Fields | None = None,
    ) -> list[Row]: ...
    async def counts(self, person: Person) -> dict[str, int]: ...
    async def value(
        self, key: str, field: str, person: Person, record: str | None
    ) -> str | None: ...
