"""Bundles of the seeded demo subjects, read back with `zipfile`; small factories for more."""

from __future__ import annotations

import io
import secrets
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from catalogue import Catalogue
from exporters import build_bundle
from stores.registry import Stores
from stores.seed import SubjectData, build_subject, insert_subject, subject_id


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def bundle_of(
    stores: Stores, catalogue: Catalogue, sid: UUID, fmt: str, purpose: str = "access", **kw: Any
) -> AsyncIterator[bytes]:
    return build_bundle(
        stores,
        catalogue,
        sid,
        format=fmt,
        purpose=purpose,
        export_id=kw.pop("export_id", uuid4()),
        generated_at=kw.pop("generated_at", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        **kw,
    )


class Bundle:
    """A finished bundle: its raw bytes, its members, and its manifest."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.zip = zipfile.ZipFile(io.BytesIO(raw))
        assert self.zip.testzip() is None  # every member's CRC checks
        self.files = {i.filename: self.zip.read(i) for i in self.zip.infolist()}
        self.manifest: dict[str, Any] = orjson.loads(self.files["manifest.json"])


async def make_bundle(
    stores: Stores, catalogue: Catalogue, sid: UUID, fmt: str, purpose: str = "access", **kw: Any
) -> Bundle:
    return Bundle(await collect(bundle_of(stores, catalogue, sid, fmt, purpose, **kw)))


async def new_subject(
    stores: Stores, catalogue: Catalogue, *, events: int = 10, **rows: list[dict[str, Any]]
) -> SubjectData:
    """A fresh subject under a unique handle, with `rows` added to (or replacing) its own."""
    data = build_subject(f"exp-{secrets.token_hex(4)}", full=True, sensitive=True, events=events)
    data.rows.update(rows)
    await insert_subject(stores, catalogue, data)
    return data


@pytest.fixture(scope="session")
async def alice_json(stores: Stores, catalogue: Catalogue) -> Bundle:
    return await make_bundle(stores, catalogue, subject_id("alice"), "json")


@pytest.fixture(scope="session")
async def alice_csv(stores: Stores, catalogue: Catalogue) -> Bundle:
    return await make_bundle(stores, catalogue, subject_id("alice"), "csv")
