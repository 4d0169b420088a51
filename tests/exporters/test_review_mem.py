"""Review finding on 4419b22 (CSV bundle speed-ups, reverted by 7bac16e), kept as a guard: a
bundle's memory stays bounded by what it may hold ("page records held up to 16 MB of JSON").

Before that commit a bundle held at most one page (500 records) of the web pages at a time: a
bundle of 20,001 long events peaked at about 6 MiB of Python heap. With it, `_Build._table`
(exporters/bundle.py) holds the pages' JSON lines whole (`_held_whole`, up to AHEAD_BYTES),
then `lines_of` (exporters/pages.py) splits them into a second full copy (`data.split(b"\\n")`)
and every rendered page waits in `made` until the data file ends: just under the 16 MB
threshold the peak was about 34 MiB per export, twice the stated bound, and the HTML held is
bounded by nothing but the JSON's size. Exports run six at a time (stores.pool.SNAPSHOTS).
Main (before 4419b22 and since its revert) peaks at about 6 MiB here.
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
    one = build_subject("review-mem", full=True, sensitive=True, events=1).rows["web_analytics"]
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
