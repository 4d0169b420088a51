"""Checked reads from parsed TOML: every problem becomes one `CatalogueError` line.

The catalogue is edited by people who are not programmers, so a mistake must say where it is
("category 'payment' names unknown purpose 'foo'"), never surface as a KeyError deep inside
the service at the first request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

# Keys become SQL identifiers, GraphQL names and file names: keep them to one safe shape, and
# short enough that `<name>_held` is still whole as an identifier (PostgreSQL keeps 63 bytes).
_KEY = re.compile(r"[a-z][a-z0-9_]{0,57}")


class CatalogueError(Exception):
    """A catalogue file that cannot be used; `str()` is one line naming the file and problem."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(path, message)
        self.path = str(path)
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {' '.join(self.message.split())}"


Table = Mapping[str, object]


class Reader:
    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, message: str) -> NoReturn:
        raise CatalogueError(self.path, message)

    def table(
        self,
        value: object,
        where: str,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
    ) -> Table:
        if not isinstance(value, dict):
            self.fail(f"{where} must be a table")
        for key in value:
            if key not in required and key not in optional:
                self.fail(f"{where} has unknown key '{key}'")
        for key in required:
            if key not in value:
                self.fail(f"{where} is missing '{key}'")
        return value

    def tables(self, value: object, section: str, noun: str) -> dict[str, Table]:
        """A table of named tables, such as `[sources.direct]`, in file order."""
        if not isinstance(value, dict):
            self.fail(f"[{section}] must be a table of named tables")
        out: dict[str, Table] = {}
        for key, inner in value.items():
            if not isinstance(inner, dict):
                self.fail(f"{noun} '{key}' must be a table")
            out[self.key(key, noun)] = inner
        return out

    def key(self, key: str, where: str) -> str:
        if not _KEY.fullmatch(key):
            self.fail(
                f"{where} '{key}' is not a valid key (a lower case letter, then up to 57 lower "
                "case letters, digits or '_')"
            )
        return key

    def text(self, t: Table, name: str, where: str) -> str:
        value = t.get(name)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}: '{name}' must be a non-empty string")
        # Editors wrap long text across lines; the line breaks carry no meaning.
        return " ".join(value.split())

    def optional_text(self, t: Table, name: str, where: str) -> str | None:
        return self.text(t, name, where) if t.get(name, "") != "" else None

    def flag(self, t: Table, name: str, where: str, default: bool = False) -> bool:
        value = t.get(name, default)
        if not isinstance(value, bool):
            self.fail(f"{where}: '{name}' must be true or false")
        return value

    def texts(self, t: Table, name: str, where: str) -> tuple[str, ...]:
        value = t.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(f"{where}: '{name}' must be a list of strings")
        if len(set(value)) != len(value):
            self.fail(f"{where}: '{name}' lists a value twice")
        return tuple(value)

    def choice(self, t: Table, name: str, where: str, allowed: tuple[str, ...]) -> str:
        value = t.get(name, allowed[0])
        if value not in allowed:
            self.fail(f"{where} has {name} {value!r}; expected one of {', '.join(allowed)}")
        assert isinstance(value, str)  # narrowed by the membership test above
        return value
