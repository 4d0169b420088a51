"""`rows_html` (one escape for a run of records) renders exactly what `row_html` (a cell at a
time) does, record after record, for any values a record's JSON can hold, NUL, the record
separator and markup included."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.pages import row_html, rows_html

NAMES = ["id", "page_url", "amount", "flag", "extra"]
COLS = [(n, n.title()) for n in NAMES]
text = st.text(alphabet=st.sampled_from(list("ab <>&\"'\x00\x01é=\n")), max_size=12)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), text
)
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(text, scalar, max_size=3))
record = st.fixed_dictionaries({n: value for n in NAMES})
# Records as a COPY gives them (every column, the same kind a column) and as Python builds
# them (columns missing, kinds mixed).
same_kinds = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 10**12),
            "page_url": st.one_of(st.none(), text),
            "amount": st.floats(allow_nan=False),
            "flag": st.booleans(),
            "extra": text,
        }
    ),
    max_size=8,
)


def _one_at_a_time(cols: list[tuple[str, str]], rows: list[dict[str, Any]], media: bool) -> str:
    return "".join(row_html(cols, r, media) for r in rows)


@settings(max_examples=500)
@given(st.lists(record, max_size=6))
def test_one_escape_for_a_run_renders_what_a_cell_at_a_time_does(
    rows: list[dict[str, Any]],
) -> None:
    assert rows_html(COLS)(rows) == _one_at_a_time(COLS, rows, False)


@settings(max_examples=300)
@given(same_kinds)
def test_columns_of_one_kind_render_as_cell_at_a_time(rows: list[dict[str, Any]]) -> None:
    assert rows_html(COLS)(rows) == _one_at_a_time(COLS, rows, False)
    partial = [{k: v for k, v in r.items() if k != "amount"} for r in rows]
    assert rows_html(COLS)(partial) == _one_at_a_time(COLS, partial, False)


def test_one_column_and_no_records() -> None:
    cols = [("page_url", "Page")]
    rows: list[dict[str, Any]] = [{"page_url": "<a>"}, {"page_url": None}, {}]
    assert rows_html(cols)(rows) == _one_at_a_time(cols, rows, False)
    assert (
        rows_html(cols)(rows) == "<tr><td>&lt;a&gt;</td></tr><tr><td></td></tr><tr><td></td></tr>"
    )
    assert rows_html(COLS)([]) == ""


def test_held_columns_media_links_and_missing_keys_render_as_before() -> None:
    cols = [("file_name", "File"), ("ssn_held", "SSN")]
    for media in (False, True):
        files: list[dict[str, Any]] = [{"file_name": "a <b>.png", "ssn_held": True}, {}]
        assert rows_html(cols, media)(files) == _one_at_a_time(cols, files, media)
    assert rows_html(COLS)([{}]) == row_html(COLS, {}, False) == "<tr>" + "<td></td>" * 5 + "</tr>"
    for sep in ("\x00", "\x01"):
        rows: list[dict[str, Any]] = [{"page_url": f"x{sep}y", "id": 1}, {"page_url": "z", "id": 2}]
        assert rows_html(COLS)(rows) == _one_at_a_time(COLS, rows, False)
        assert f"x{sep}y" in rows_html(COLS)(rows)  # rendered cell by cell, kept as before
