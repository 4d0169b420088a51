"""`service/<name>.<ext>`: the records dsar itself holds about the person (their logins, the
copies they asked for, their grants and transfers, who looked at their data), written in the
bundle's format. Small lists: built whole, unlike the categories' streams."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from exporters.csv import BOM, cell, flatten
from exporters.source import Row, dumps


def service_json(rows: Sequence[Row]) -> bytes:
    if not rows:
        return b"[]\n"
    return b"[\n" + b",\n".join(dumps(dict(r)) for r in rows) + b"\n]\n"


def service_csv(rows: Sequence[Row]) -> bytes:
    """With a UTF-8 byte-order mark and a header row; nested values flattened (a.0, a.1)."""
    flat = [dict(flatten(dict(r))) for r in rows]
    header: list[str] = []
    for r in flat:
        header += [k for k in r if k not in header]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in flat:
        writer.writerow([cell(r.get(k)) for k in header])
    return BOM + buf.getvalue().encode()


WRITERS = {"json": service_json, "csv": service_csv}


def service_files(records: Mapping[str, Sequence[Row]], fmt: str) -> list[tuple[str, bytes, int]]:
    """(path, body, records) of each list, in the order given."""
    write = WRITERS[fmt]
    return [(f"service/{name}.{fmt}", write(rows), len(rows)) for name, rows in records.items()]
