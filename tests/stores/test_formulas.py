"""Formula neutralisation on COPY's bytes is exactly `neutralise` on every text cell.

Property-based, against the real COPY of generated rows: whatever the text (quotes, commas,
line breaks, carriage returns, tabs, leading triggers, unicode, empty or NULL) and wherever
the stream is cut into chunks, Python's csv module reads `neutralise(text)` back from every
text cell and the other cells unchanged; PostgreSQL's own CSV reader tells NULL from the empty
string as before; and the bytes are those the former SQL (a CASE per text cell) wrote,
force-quoted.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections.abc import Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporters.csv import neutralise
from stores._formulas import FORMULA_STARTS, Neutraliser

Row = tuple[str | None, int | None, str | None]
_STARTS = ", ".join(str(ord(c)) for c in FORMULA_STARTS)
ROWS = "unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS r(a, n, b, o)"
# The new query (plain cells, force-quoted text) and the former one (the CASE in SQL).
PLAIN = f"SELECT a, n, b FROM {ROWS} ORDER BY o"  # noqa: S608  # constants only
FORMER = (
    f"SELECT CASE WHEN ascii(a) IN ({_STARTS}) THEN '''' || a ELSE a END AS a, n, "  # noqa: S608  # constants only
    f"CASE WHEN ascii(b) IN ({_STARTS}) THEN '''' || b ELSE b END AS b FROM {ROWS} ORDER BY o"
)
OPTIONS = {"format": "csv", "header": True, "encoding": "UTF8", "force_quote": ("a", "b")}

# Bytes that matter to CSV and to the rule, often; then any text PostgreSQL can hold.
_tricky = st.text(st.sampled_from("=+-@\t\r\n\",'a é\\. "), max_size=8)
_any = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
text = st.one_of(st.none(), _tricky, _any)
rows = st.lists(st.tuples(text, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), text))


@pytest.fixture(scope="module")
def db(pg_server: str) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]]:
    """One connection on a loop of this module's own (hypothesis calls the test synchronously)."""
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(pg_server))
    loop.run_until_complete(conn.execute("CREATE TEMP TABLE back (a text, n bigint, b text)"))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


async def _copy(conn: asyncpg.Connection, query: str, data: list[Row]) -> bytes:
    out: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        out.append(chunk)

    columns = [[r[0] for r in data], [r[1] for r in data], [r[2] for r in data]]
    await conn.copy_from_query(query, *columns, output=sink, **OPTIONS)
    return b"".join(out)


async def _read_back(conn: asyncpg.Connection, body: bytes) -> list[Row]:
    async with conn.transaction():
        await conn.execute("TRUNCATE back")
        await conn.copy_to_table("back", source=io.BytesIO(body), format="csv", header=True)
        got = await conn.fetch("SELECT a, n, b FROM back")
        await conn.execute("TRUNCATE back")
    return [(r["a"], r["n"], r["b"]) for r in got]


def _neutralised(raw: bytes, cuts: list[int]) -> bytes:
    cells = Neutraliser()
    ends = [0, *cuts, len(raw)]
    return b"".join(cells(raw[i:j]) for i, j in itertools.pairwise(ends))


def _expected(v: str | None) -> str | None:
    return None if v is None else neutralise(v)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=rows)
def test_neutralised_bytes_read_back_as_neutralise_of_every_text_cell(
    db: tuple[asyncio.AbstractEventLoop, asyncpg.Connection], data: list[Row]
) -> None:
    loop, conn = db
    raw = loop.run_until_complete(_copy(conn, PLAIN, data))
    whole = _neutralised(raw, [])
    # Cut anywhere, into two chunks or into single bytes: the same bytes come out.
    for cut in range(1, len(raw)):
        assert _neutralised(raw, [cut]) == whole, cut
    assert _neutralised(raw, list(range(1, len(raw)))) == whole
    # What a spreadsheet or Python reads: neutralise() of each text cell, numbers untouched.
    parsed = list(csv.reader(io.StringIO(whole.decode(), newline="")))
    assert parsed[0] == ["a", "n", "b"]
    assert parsed[1:] == [
        [neutralise(a or ""), "" if n is None else str(n), neutralise(b or "")] for a, n, b in data
    ]
    # NULL stays NULL and the empty string stays empty (PostgreSQL's reader tells them apart).
    back = loop.run_until_complete(_read_back(conn, whole))
    assert back == [(_expected(a), n, _expected(b)) for a, n, b in data]
    # Byte for byte what the former CASE in SQL gave, force-quoted.
    assert whole == loop.run_until_complete(_copy(conn, FORMER, data))


@pytest.mark.parametrize(
    ("chunks", "out"),
    [
        ([b'a\n"=1"\n'], b'a\n"\'=1"\n'),
        ([b'"', b'-1",2\n'], b'"\'-1",2\n'),  # a stream that starts with a cell's quote
        ([b'a,b\n"x",', b'"', b"@", b'"\n'], b'a,b\n"x","\'@"\n'),
        ([b'a\n"x""', b'=1"\n'], b'a\n"x""=1"\n'),  # a doubled quote split from its trigger
        ([b'a\n"x,', b'""=1"\n'], b'a\n"x,""=1"\n'),  # a comma inside the cell, then "" and =
        ([b"a,n\n-1,", b"-2\n"], b"a,n\n-1,-2\n"),  # unquoted cells are never text
    ],
)
def test_chunk_boundaries(chunks: list[bytes], out: bytes) -> None:
    cells = Neutraliser()
    assert b"".join(cells(c) for c in chunks) == out
