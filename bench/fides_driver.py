"""Scenario 6's peer: Ethyca Fides building an access package of the same rows as dsar.

Runs inside Fides's own virtualenv (`bench/.fides-venv`, Python 3.13, `ethyca-fides`), never in
dsar's; imports nothing of dsar. One process per subject and packaging path:

    bench/.fides-venv/bin/python bench/fides_driver.py   (spec, then `run` lines, on stdin)

The spec names the collections (one per dsar category: a DSN, the mapped SELECT of the person's
rows dsar's export runs on the company's table, and its parameters, the person's key values)
and which of Fides's two packaging paths to take:

- `memory`: `fides.api.tasks.storage.write_to_in_memory_buffer`, what `upload_to_local`, GCS and
  S3 without streaming use: the whole package built in a BytesIO.
- `streaming`: `SmartOpenStreamingStorage.upload_to_storage_streaming`, Fides's S3 streaming
  path, with the upload stream replaced by one that counts and drops the bytes (as dsar's
  client does with its download).

Rows are read the way Fides's SQL connector reads them: SQLAlchemy over psycopg2, then
`SQLConnector.cursor_result_to_rows`. After the spec, each `run` line on stdin is one round
(the benchmark interleaves them with dsar's); each prints one JSON line with its timings and
the process's peak RSS so far. Python keeps the memory it freed for the next round, so the
peak is the first round's: the rounds give the times, the first one the memory.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

_PAGE = resource.getpagesize()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Drop:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, chunk: bytes) -> int:
        self.bytes += len(chunk)
        return len(chunk)


class DroppingStorage:
    """Stands in for the S3 client of Fides's streaming path: the ZIP is built by Fides's own
    code; only the upload is replaced by a sink."""

    def __init__(self) -> None:
        self.sink = _Drop()

    @contextlib.contextmanager
    def stream_upload(self, bucket: str, key: str) -> Iterator[_Drop]:
        yield self.sink

    def generate_presigned_url(self, bucket: str, key: str, ttl_seconds: int | None = None) -> str:
        return f"http://127.0.0.1/{bucket}/{key}"


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    started = time.perf_counter()
    from fides.api.service.connectors.sql_connector import SQLConnector
    from fides.api.service.storage.streaming.schemas import StorageUploadConfig
    from fides.api.service.storage.streaming.smart_open_streaming_storage import (
        SmartOpenStreamingStorage,
    )
    from fides.api.tasks.storage import write_to_in_memory_buffer
    from sqlalchemy import create_engine, text

    imported = time.perf_counter() - started
    request = SimpleNamespace(id=spec["request_id"])
    engines = {c["dsn"]: create_engine(c["dsn"]) for c in spec["collections"]}
    print(json.dumps({"ready": True, "import_s": imported, "base_mb": rss_mb()}), flush=True)

    # One line on stdin per round: the benchmark interleaves these rounds with dsar's.
    for line in sys.stdin:
        if line.strip() != "run":
            break
        base = rss_mb()
        start = time.perf_counter()
        data: dict[str, Any] = {}
        for c in spec["collections"]:
            with engines[c["dsn"]].connect() as conn:
                result = conn.execute(text(c["sql"]), c["params"])
                data[c["name"]] = SQLConnector.cursor_result_to_rows(result)
        loaded = time.perf_counter() - start
        rows = sum(len(v) for v in data.values())

        start = time.perf_counter()
        if spec["path"] == "memory":
            package = write_to_in_memory_buffer(spec["format"], data, request)
            size = len(package.getvalue())
            del package
        else:
            storage = DroppingStorage()
            SmartOpenStreamingStorage(storage).upload_to_storage_streaming(
                data,
                StorageUploadConfig(
                    bucket_name="bench",
                    file_key=f"{spec['request_id']}.zip",
                    resp_format=spec["format"],
                ),
                request,
            )
            size = storage.sink.bytes
        packaged = time.perf_counter() - start
        del data
        gc.collect()
        print(
            json.dumps(
                {
                    "rows": rows,
                    "bytes": size,
                    "load_s": loaded,
                    "package_s": packaged,
                    "base_mb": base,
                    "peak_mb": peak_mb(),
                }
            ),
            flush=True,
        )
    for engine in engines.values():
        engine.dispose()


if __name__ == "__main__":
    main()
