"""`rows_html` (one escape a record) renders exactly what `row_html` (a cell at a time) does,
for any values a record's JSON can hold, NUL and markup included."""

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


@settings(max_examples=500)
@given(record)
def test_one_escape_a_record_renders_what_a_cell_at_a_time_does(r: dict[str, Any]) -> None:
    assert rows_html(COLS)(r) == row_html(COLS, r, False)


def test_held_columns_media_links_and_missing_keys_render_as_before() -> None:
    cols = [("file_name", "File"), ("ssn_held", "SSN")]
    for media in (False, True):
        r = {"file_name": "a <b>.png", "ssn_held": True}
        assert rows_html(cols, media)(r) == row_html(cols, r, media)
    assert rows_html(COLS)({}) == row_html(COLS, {}, False) == "<tr>" + "<td></td>" * 5 + "</tr>"
    r = {"page_url": "x\x00y", "id": 1}
    assert rows_html(COLS)(r) == row_html(COLS, r, False)
    assert "x\x00y" in rows_html(COLS)(r)  # rendered cell by cell, the NUL kept as before
