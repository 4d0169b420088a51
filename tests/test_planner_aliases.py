"""A connection whose `edges`, `node` or `pageInfo` is asked for twice under two aliases, each
with its own selection: a plan holds one selection per part of a connection (one `node`
record plan, one list of edge and pageInfo parts), so the planner leaves these to the
executor, which answers each alias with its own selection. Planned, the last `node` alias's
fields answered for every alias, and every alias got the parts of all of them.
"""

from __future__ import annotations

import orjson
import pytest
from starlette.applications import Starlette

from stores.seed import subject_id
from tests._planner import both

ALICE = subject_id("alice")

QUERIES = {
    "node": "edges { a: node { pageUrl } b: node { action } }",
    "edges": "x: edges { node { pageUrl } } y: edges { cursor }",
    "pageInfo": "p: pageInfo { hasNextPage } q: pageInfo { endCursor }",
}


@pytest.mark.parametrize("part", list(QUERIES))
async def test_each_alias_of_a_connections_parts_gets_its_own_selection(
    app: Starlette, part: str
) -> None:
    answers = await both(app, ALICE, f"{{ me {{ webAnalytics(first: 2) {{ {QUERIES[part]} }} }} }}")
    assert not answers.planned
    assert orjson.loads(answers.run) == orjson.loads(answers.executor)
    data = orjson.loads(answers.run)["data"]["me"]["webAnalytics"]
    assert data and all(isinstance(v, (list, dict)) for v in data.values())
