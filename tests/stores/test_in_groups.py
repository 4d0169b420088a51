"""`in_groups` (stores/registry.py): reads grouped by store or subject, results put back in
their items' places; with `together` the groups are read at once (a `me` query's pages of two
stores no longer wait for each other), and a failure cancels the rest and is raised as itself.
The reads of a real request: tests/test_graphql.py and tests/schema/."""

from __future__ import annotations

import asyncio

import pytest

from stores.registry import in_groups

WAIT = 5.0


async def test_results_go_back_to_their_items_places_one_group_after_another() -> None:
    order: list[str] = []

    async def read(group: str, mine: list[str]) -> list[str] | None:
        order.append(group)
        return None if group == "none" else [f"{group}:{item}" for item in mine]

    items = ["a1", "b1", "a2", "none1", "b2"]
    out = await in_groups(items, lambda item: item[:-1], read, "empty")
    assert out == ["a:a1", "b:b1", "a:a2", "empty", "b:b2"]
    assert order == ["a", "b", "none"]


async def test_together_the_groups_are_read_at_once() -> None:
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def read(group: str, mine: list[str]) -> list[str]:
        started[group].set()
        # Each group's read ends only once the other one has started: one after another, the
        # first would wait for ever.
        await asyncio.wait_for(started["b" if group == "a" else "a"].wait(), WAIT)
        return [group.upper() for _ in mine]

    out = await in_groups(["a1", "b1", "a2"], lambda item: item[0], read, "", together=True)
    assert out == ["A", "B", "A"]


async def test_together_a_failure_is_raised_as_itself_and_stops_the_others() -> None:
    cancelled = asyncio.Event()

    async def read(group: str, mine: list[str]) -> list[str]:
        if group == "bad":
            await asyncio.sleep(0)
            raise ConnectionResetError("store gone")
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return mine

    with pytest.raises(ConnectionResetError, match="store gone"):
        await asyncio.wait_for(
            in_groups(["slow1", "bad1"], lambda item: item[:-1], read, "", together=True), WAIT
        )
    assert cancelled.is_set()  # the other store's read was not left running
