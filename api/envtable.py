"""The table of environment variables in docs/OPERATIONS.md, kept equal to what `Settings` reads.

`python -m api.envtable` prints the table; `python -m api.envtable --write` rewrites it in place
between the markers of docs/OPERATIONS.md. The variables are the names `api/settings.py` reads;
each row keeps the meaning and default already written in the guide, else takes them from the
README's configuration table, else says it is undescribed (tests/test_operations.py fails on
that, and on any difference between the table and the code).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "api" / "settings.py"
GUIDE = ROOT / "docs" / "OPERATIONS.md"
README = ROOT / "README.md"
START = "<!-- env-table:start (python -m api.envtable --write) -->"
END = "<!-- env-table:end -->"
UNDESCRIBED = "UNDESCRIBED: say what it does"
HEADER = "| variable | meaning | default |\n|---|---|---|"
_NAME = re.compile(r"\"((?:DSAR|OTEL)_[A-Z0-9_]*[A-Z0-9])\b")
_ROW = re.compile(r"^\| `([A-Z0-9_]+)`(?:, `[A-Z0-9_]+`)* \| (.*) \| (.*) \|$", re.MULTILINE)


def variables() -> list[str]:
    """Every environment variable `api/settings.py` names, in the order it first names them."""
    seen: dict[str, None] = {}
    for name in _NAME.findall(SETTINGS.read_text()):
        seen.setdefault(name, None)
    return list(seen)


def rows_of(text: str) -> dict[str, tuple[str, str]]:
    """`variable -> (meaning, default)` of every table row in `text`."""
    return {m.group(1): (m.group(2), m.group(3)) for m in _ROW.finditer(text)}


def _table_text(guide: str) -> str:
    if START not in guide or END not in guide:
        return ""
    return guide.split(START, 1)[1].split(END, 1)[0]


def table(guide: str | None = None, readme: str | None = None) -> str:
    guide = GUIDE.read_text() if guide is None else guide
    readme = README.read_text() if readme is None else readme
    known = {**rows_of(readme), **rows_of(_table_text(guide))}
    lines = [HEADER]
    for name in variables():
        meaning, default = known.get(name, (UNDESCRIBED, "?"))
        lines.append(f"| `{name}` | {meaning} | {default} |")
    return "\n".join(lines)


def written(guide: str) -> str:
    """`guide` with its table replaced by the current one."""
    before, rest = guide.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{table(guide)}\n{END}{after}"


def main(argv: list[str]) -> int:
    if argv[1:] == ["--write"]:
        GUIDE.write_text(written(GUIDE.read_text()))
        print(f"wrote the table of {len(variables())} variables into {GUIDE.relative_to(ROOT)}")
        return 0
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
