"""A bundle's web pages read beside its data file (exporters/bundle.py `_Ahead`) are the same
pages, in the same place, as read after it: the bundle's bytes are identical either way, and
a bundle whose pages outgrow what may wait (`AHEAD_BYTES`) still holds them all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import exporters.bundle as bundle_module
from catalogue import Catalogue
from domain.budget import ExportBudget
from stores.registry import Stores
from stores.seed import SubjectData
from stores.streams import Snapshot
from tests.exporters.conftest import Bundle, bundle_of, collect, make_bundle, new_subject


@asynccontextmanager
async def _none(self: Snapshot) -> AsyncIterator[None]:
    yield None


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each snapshot of the next bundles got one beside it."""
    used: list[bool] = []
    real = Snapshot.beside

    @asynccontextmanager
    async def spy(self: Snapshot) -> AsyncIterator[Snapshot | None]:
        async with real(self) as other:
            used.append(other is not None)
            yield other

    monkeypatch.setattr(Snapshot, "beside", spy)
    return used


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_pages_read_beside_the_data_file_give_the_same_bundle(
    stores: Stores, catalogue: Catalogue, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two pages and a bit of web analytics, so the reading runs on past the first page.
    subject = await new_subject(stores, catalogue, events=1_200)
    used = _spy(monkeypatch)
    beside = await make_bundle(stores, catalogue, subject.id, fmt, export_id="same")
    assert used and all(used)  # every PostgreSQL store's pages were read beside
    monkeypatch.setattr(Snapshot, "beside", _none)
    after = await make_bundle(stores, catalogue, subject.id, fmt, export_id="same")
    # The same members in the same order, each with the same bytes, but for the times at which
    # each bundle searched the stores (its own snapshot's), which the manifest and index state.
    assert [i.filename for i in beside.zip.infolist()] == [i.filename for i in after.zip.infolist()]
    for name, body in beside.files.items():
        if name not in ("manifest.json", "index.html"):
            assert after.files[name] == body, name
    for m in (beside.manifest, after.manifest):
        for searched in m["stores"]:
            searched.pop("searched_at")
    assert beside.manifest == after.manifest
    pages = [n for n in beside.files if n.startswith("pages/web_analytics-")]
    assert pages == [f"pages/web_analytics-{n}.html" for n in (1, 2, 3)]


async def test_pages_past_what_may_wait_are_all_written(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for less than one page, the reading waits for each page to be written."""
    subject = await new_subject(stores, catalogue, events=1_200)
    whole = await make_bundle(stores, catalogue, subject.id, "json")
    monkeypatch.setattr(bundle_module, "AHEAD_BYTES", 1)
    used = _spy(monkeypatch)
    tight = await make_bundle(stores, catalogue, subject.id, "json")
    assert used and all(used)
    assert (
        tight.manifest["categories"]["web_analytics"]["pages"]
        == (whole.manifest["categories"]["web_analytics"]["pages"])
    )
    for name, body in whole.files.items():
        if name.startswith("pages/"):
            assert tight.files[name] == body


async def test_exports_pacing_together_all_end_while_their_pages_wait(
    stores: Stores, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four bundles on one budget of two places, small requests in flight all along, each
    bundle's pages waiting to be written (room for one page): every bundle ends. When the
    pages' task paced like the data file (taking a place and holding it while it waited for
    its data file to be written), two such tasks held both places while their data files
    waited for one, and all four exports stood still for good."""
    monkeypatch.setattr(bundle_module, "AHEAD_BYTES", 1)
    budget = ExportBudget(active=2, share=0.5)
    people = [await new_subject(stores, catalogue, events=1_200) for _ in range(4)]
    stop = asyncio.Event()

    async def small_requests() -> None:
        while not stop.is_set():
            with budget.small_request():
                await asyncio.sleep(0.002)
            await asyncio.sleep(0)

    async def export(person: SubjectData) -> Bundle:
        pacer = budget.stream()
        try:
            chunks = bundle_of(
                stores,
                catalogue,
                person.id,
                "json",
                pace=pacer.pace,
                pace_beside=pacer.beside,
            )
            return Bundle(await collect(chunks))
        finally:
            pacer.close()

    load = asyncio.create_task(small_requests())
    try:
        bundles = await asyncio.wait_for(asyncio.gather(*map(export, people)), 30)
    finally:
        stop.set()
        await load
    for b in bundles:
        assert b.manifest["categories"]["web_analytics"]["records"] == 1_200
        assert len(b.manifest["categories"]["web_analytics"]["pages"]) == 3
    assert budget._free._value == 2  # every place given back
