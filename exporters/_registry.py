"""The export formats, looked up by name: one small interface, no branching on strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from catalogue import Category
from exporters.csv import CsvExporter
from exporters.json import JsonExporter
from exporters.source import Encoded, Row
from stores.interface import Snapshot
from stores.mapping import Person


class Exporter(Protocol):
    """One export format; each category becomes one `data/<key>.<extension>` file."""

    @property
    def name(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def extension(self) -> str: ...
    @property
    def manifest_notes(self) -> Mapping[str, Any]:
        """Entries this format adds to the manifest (such as the CSV formula rule)."""

    def table(self, snapshot: Snapshot, key: str, person: Person) -> Encoded:
        """A category of a table store (PostgreSQL, MySQL), read within `snapshot`."""

    def rows(self, category: Category, rows: Sequence[Row]) -> Encoded:
        """A category whose records are already rows (the media store's file list)."""

    def schema(self, category: Category) -> dict[str, Any]:
        """The JSON Schema of the category's data file in this format."""


class UnknownFormat(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown export format {self.name!r} (known: {', '.join(EXPORTERS)})"


EXPORTERS: Mapping[str, Exporter] = {e.name: e for e in (JsonExporter(), CsvExporter())}


def exporter(name: str) -> Exporter:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise UnknownFormat(name) from None
