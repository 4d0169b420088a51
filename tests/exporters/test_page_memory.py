"""A bundle's memory stays bounded by what it may hold: one page (500 records) of the web
pages at a time. A bundle of 20,001 long events peaks at about 6 MiB of Python heap; a version
that read the pages' records ahead of the data file (holding their JSON whole, a split copy of
it, and every rendered page until the data file ended) peaked at about 34 MiB per export, and
exports run six at a time (stores.pool.SNAPSHOTS).
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from uuid import UUID

import pytest

from catalogue import Catalogue
from stores.registry import Stores
from stores.seed import build_subject
from tests.exporters.conftest import bundle_of, new_subject

# The page records' budget 4419b22 stated, and what a bundle needs besides (main: ~6 MiB).
AHEAD_BYTES = 16 << 20
WORKING_SET = 8 << 20


async def _peak(stores: Stores, catalogue: Catalogue, sid: UUID, fmt: str) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        async for _ in bundle_of(stores, catalogue, sid, fmt):
            pass
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_a_bundle_holds_no_more_than_its_stated_page_budget(
    stores: Stores, catalogue: Catalogue, fmt: str
) -> None:
    one = build_subject("page-memory", full=True, sensitive=True, events=1).rows["web_analytics"]
    start = one[0]["occurred_at"]
    # 20,001 events (the pages' capacity + 1) whose JSON lines stay just under AHEAD_BYTES.
    events = [
        dict(
            one[0],
            page_url=f"https://www.example.com/{'p' * 480}/{i}",
            occurred_at=start + timedelta(seconds=i),
        )
        for i in range(20_001)
    ]
    subject = await new_subject(stores, catalogue, events=0, web_analytics=events)
    assert await _peak(stores, catalogue, subject.id, fmt) < AHEAD_BYTES + WORKING_SET
