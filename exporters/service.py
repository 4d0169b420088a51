"""`service/<name>.<ext>`: the records dsar itself holds about the person (their logins, the
copies they asked for, their grants and transfers, who looked at their data), written in the
bundle's format. Small lists: built whole, unlike the categories' streams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exporters.csv import BOM, csv_text
from exporters.source import Row, dumps


def service_json(rows: Sequence[Row]) -> bytes:
    if not rows:
        return b"[]\n"
    return b"[\n" + b",\n".join(dumps(dict(r)) for r in rows) + b"\n]\n"


def service_csv(rows: Sequence[Row]) -> bytes:
    """With a UTF-8 byte-order mark and a header row; nested values flattened (a.0, a.1)."""
    return BOM + csv_text((), rows)


WRITERS = {"json": service_json, "csv": service_csv}


def service_files(records: Mapping[str, Sequence[Row]], fmt: str) -> list[tuple[str, bytes, int]]:
    """(path, body, records) of each list, in the order given."""
    write = WRITERS[fmt]
    return [(f"service/{name}.{fmt}", write(rows), len(rows)) for name, rows in records.items()]
