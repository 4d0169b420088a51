"""What resolvers read from a request beyond their typed arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from schema.context import Context
from schema.subject import camel


def uuid_or_none(value: Any) -> UUID | None:
    """An id argument as a UUID; None when it is not one (the domain decides what that means)."""
    try:
        return UUID(str(value))
    except ValueError:
        return None


def selected_categories(info: strawberry.Info) -> set[str]:
    """The category keys the query selects under this field, through fragments too."""
    ctx: Context = info.context
    by_name = {camel(c.key): c.key for c in ctx.services.catalogue}
    found: set[str] = set()

    def walk(selections: Sequence[Selection]) -> None:
        for sel in selections:
            if isinstance(sel, SelectedField):
                if sel.name in by_name:
                    found.add(by_name[sel.name])
            else:
                walk(sel.selections)

    for root in info.selected_fields:
        walk(root.selections)
    return found
