"""Formula neutralisation on the bytes of PostgreSQL's CSV, chunk by chunk.

OWASP, "CSV Injection": a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return as a formula, so such a text cell is written with a leading `'`. Doing
that in SQL (a CASE per text cell) cost PostgreSQL about a quarter more time than the plain
COPY; here it costs one RE2 search per chunk, and an `re.sub` where the chunk holds
a quote followed by a trigger.

Why the bytes are enough. The COPY runs with FORCE_QUOTE on the text columns
(`stores.streams.csv_options`), so every non-null text cell starts with `"`, and a cell of any
other column (numbers, timestamps, booleans, addresses, ids: nothing PostgreSQL needs to
quote) never holds a `"`. Inside a quoted cell PostgreSQL doubles every quote (`""`), and a
closing quote is followed by `,`, a line break or the end. So a `"` that follows the start,
a `,` or a line break and is followed by a trigger byte is exactly the opening quote of a text
cell whose value starts with that trigger: the first quote of a doubled pair is followed by
`"`, the second is preceded by `"`, a closing quote is followed by no trigger. The `'` goes
right after that opening quote: the bytes are then those of the CASE's value, force-quoted.
Every trigger is ASCII, which never occurs inside a multi-byte UTF-8 character.

A chunk may end anywhere: the last two bytes seen decide a quote split from its neighbours.
"""

from __future__ import annotations

import re

import re2

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_TRIGGERS = b"".join(re.escape(c.encode()) for c in FORMULA_STARTS)
_TRIGGER_BYTES = frozenset(c.encode()[0] for c in FORMULA_STARTS)
_CELL_START = frozenset(b",\n")
# The quote first: re looks for that literal prefix at C speed, and only then checks the byte
# before it (the look-behind) and the byte after it (the look-ahead).
_OPENING = re.compile(b'"(?<=[,\n]")(?=[' + _TRIGGERS + b"])")
_MARKED = b"\"'"
# A quote followed by a trigger, wherever it is: a chunk without one (nearly every chunk of a
# company's data) has no cell to mark. RE2 tells so in about 117 ms a million web-analytics
# events (114 MB) here, and lets other threads run meanwhile; `re` took 255 to 272 ms holding
# the GIL, 31 % of the server's samples in the profile of a CSV export. The substitution,
# which looks behind each quote (no RE2 pattern can), stays with `re`.
_CANDIDATE = re2.compile(b'"[' + b"".join(b"\\x%02x" % b for b in sorted(_TRIGGER_BYTES)) + b"]")


class Neutraliser:
    """Feeds the chunks of one CSV stream, in order; returns each with its `'` inserted."""

    def __init__(self) -> None:
        # The last two bytes seen; the start of the stream counts as a line break.
        self._tail = b"\n"

    def __call__(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        tail = self._tail
        out = _OPENING.sub(_MARKED, chunk) if _CANDIDATE.search(chunk) else chunk
        # A quote at the chunk's start: the byte before it is in the previous chunk.
        if (
            chunk[0] == 0x22
            and len(chunk) > 1
            and tail[-1] in _CELL_START
            and chunk[1] in _TRIGGER_BYTES
        ):
            out = _MARKED + out[1:]
        # A quote at the previous chunk's end, its trigger at this one's start.
        if (
            len(tail) == 2
            and tail[1] == 0x22
            and tail[0] in _CELL_START
            and chunk[0] in _TRIGGER_BYTES
        ):
            out = b"'" + out
        self._tail = chunk[-2:] if len(chunk) > 1 else tail[-1:] + chunk
        return out
