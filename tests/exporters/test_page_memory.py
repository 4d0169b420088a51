"""A bundle's memory stays bounded by what it may hold: the web pages rendered ahead of their
data file wait deflated, at most `exporters.bundle.AHEAD_BYTES` (2 MiB), and one page (500
records) is rendered at a time; the ZIP's queue holds at most `exporters._zip.AHEAD_BYTES`
(4 MiB) read ahead of its thread. A bundle of 20,001 long events whose pages do not deflate
much (hex, about half) peaks under those plus 14 MiB of Python heap. A version that read the
pages' records before the data file, on the same connection (holding their JSON whole, a
split copy of it, and every rendered page until the data file ended) peaked at about 34 MiB
per export, and exports run six at a time (stores.pool.SNAPSHOTS).
"""

from __future__ import annotations

import secrets
import tracemalloc
from datetime import timedelta
from uuid import UUID

import pytest

from catalogue import Catalogue
from exporters._zip import AHEAD_BYTES as ZIP_AHEAD_BYTES
from exporters.bundle import AHEAD_BYTES
from stores.registry import Stores
from stores.seed import build_subject
from tests.exporters.conftest import bundle_of, new_subject

# What a bundle needs besides the pages waiting for their data file: with the pages read beside
# it, two COPY streams' buffers (256 kB each, stores/streams.py) and a page being rendered (here
# 10 to 14 MiB in all; read after the data file, 7 to 8 MiB).
WORKING_SET = 14 << 20


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
    # 20,001 events (the pages' capacity + 1): about 13 MB of pages, 6 MB deflated.
    events = [
        dict(
            one[0],
            page_url=f"https://www.example.com/{secrets.token_hex(240)}/{i}",
            occurred_at=start + timedelta(seconds=i),
        )
        for i in range(20_001)
    ]
    subject = await new_subject(stores, catalogue, events=0, web_analytics=events)
    assert (
        await _peak(stores, catalogue, subject.id, fmt)
        < AHEAD_BYTES + ZIP_AHEAD_BYTES + WORKING_SET
    )
