"""`Subject`: one field per category of the catalogue, each a few lines over a DataLoader."""

# No `from __future__ import annotations`: resolvers are generated with real annotation objects.

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import strawberry

from catalogue import Catalogue, Category
from domain import disclosures, jurisdiction
from schema import cursors
from schema.context import Context
from schema.errors import InvalidArgument
from schema.policy_types import RightToKnow, right_to_know
from schema.records import PageInfo, RecordTypes
from stores.mapping import Fields, Position, Row

DEFAULT_PAGE = 20
MAX_PAGE = 100
LIST_LIMIT = 1000  # short lists (payment, sensitive) are returned whole up to this bound


async def settled(ctx: Context, catalogue: Catalogue, sid: UUID) -> jurisdiction.Settled:
    """The person's jurisdiction, settled and recorded once per request: the account overview
    asks `withheld` and `rightToKnow` together, and both follow the same settlement."""
    async with ctx.settling:
        found = ctx.settled.get(sid)
        if found is None:
            found = await jurisdiction.settle(ctx.services.stores, catalogue, sid)
            ctx.settled[sid] = found
        return found


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


@strawberry.type(
    description="A value that is held about the subject and that answers to queries never "
    "carry, with the rule that governs it for this subject."
)
class WithheldItem:
    category: str = strawberry.field(description="Category key.")
    field: str = strawberry.field(description="Field name.")
    kind: str | None = strawberry.field(description="For government IDs: which kind.")
    rule: str = strawberry.field(
        description="The rule that governs it for this subject, by their jurisdiction: the "
        "law that withholds it, or the one that makes it part of their own copy."
    )
    released: bool = strawberry.field(
        description="Part of the subject's own downloaded copy when they ask for it with a "
        "strong, recent sign-in (never of an answer to a query)."
    )
    reason: str = strawberry.field(description="Why, in the words of the rule or exception.")


def page_window(
    secret: bytes, category: str, first: int | None, after: str | None
) -> tuple[int, Position | None]:
    """A connection's page size and start, from its `first` and `after` arguments."""
    size = DEFAULT_PAGE if first is None else first
    if size < 1:
        raise InvalidArgument("`first` must be at least 1.")
    position = cursors.decode(secret, category, after) if after is not None else None
    return min(size, MAX_PAGE), position


def list_read(ctx: Context, category: str, sid: UUID, fields: Fields | None) -> tuple[str, Any]:
    """Where a short list's records are read whole (up to LIST_LIMIT): files are listed, tables
    paged. The loaders' batch function (`Loaders.loader_of`) and its key."""
    if ctx.loaders.stores.store_of(category).kind == "files":
        return "file_lists", (category, sid)
    return "pages", (category, sid, LIST_LIMIT, None, fields)


async def read_list(
    ctx: Context, category: str, sid: UUID, fields: Fields | None = None
) -> list[Row]:
    kind, key = list_read(ctx, category, sid, fields)
    rows: list[Row] = await ctx.loaders.loader_of(kind).load(key)
    return rows


def _single(cat: Category, types: RecordTypes) -> Callable[..., Any]:
    async def resolve(self: Any, info: strawberry.Info) -> Any:
        ctx: Context = info.context
        row = await ctx.loaders.single.load((cat.key, self.sid, None))
        return None if row is None else types.build(row, self.masked)

    resolve.__annotations__["return"] = types.record | None
    return resolve


def _list(cat: Category, types: RecordTypes) -> Callable[..., Any]:
    async def resolve(self: Any, info: strawberry.Info) -> Any:
        rows = await read_list(info.context, cat.key, self.sid)
        return [types.build(r, self.masked) for r in rows]

    resolve.__annotations__["return"] = list[types.record]  # type: ignore[name-defined]  # generated
    return resolve


def _connection(cat: Category, types: RecordTypes) -> Callable[..., Any]:
    async def resolve(
        self: Any,
        info: strawberry.Info,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
    ) -> Any:
        ctx: Context = info.context
        secret = ctx.services.rules.secret_key
        size, position = page_window(secret, cat.key, first, after)
        rows = await ctx.loaders.page.load((cat.key, self.sid, size + 1, position, None))
        edges = [
            types.edge(
                node=types.build(r, self.masked),
                cursor=cursors.encode(secret, cat.key, r["_pos"]),
            )
            for r in rows[:size]
        ]
        return types.connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > size,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    resolve.__annotations__["return"] = types.connection
    return resolve


def is_list(cat: Category) -> bool:
    """Files, and tables with a record id, hold many records a subject; the rest hold one."""
    return cat.key == "recordings" or any(f.name == "id" for f in cat.fields)


def _resolver(cat: Category, types: RecordTypes) -> Callable[..., Any]:
    if cat.paged:
        return _connection(cat, types)
    if is_list(cat):
        return _list(cat, types)
    return _single(cat, types)


def subject_type(
    catalogue: Catalogue, types: dict[str, RecordTypes], extra: Mapping[str, Any] | None = None
) -> Any:
    """`extra`: fields other domain modules add (e.g. `accessLog`), each resolving over `self.sid`
    and honouring `self.masked`."""
    rule = catalogue.withholding.title
    released = "".join(
        f", or part of their own copy asked for with a strong, recent sign-in ({r.title})"
        for r in catalogue.release_rules
    )

    async def right_to_know_resolver(self: Any, info: strawberry.Info) -> RightToKnow:
        ctx: Context = info.context
        counts = await ctx.loaders.counts.load(self.sid)
        now = datetime.now(UTC)
        held = [key for key, n in counts.items() if n]
        facts = await disclosures.person_facts(
            ctx.services.stores,
            ctx.services.db,
            catalogue,
            self.sid,
            now,
            held,
            settled(ctx, catalogue, self.sid),
        )
        return right_to_know(catalogue, counts, now, facts)

    async def withheld_resolver(self: Any, info: strawberry.Info) -> list[WithheldItem]:
        ctx: Context = info.context
        found = await settled(ctx, catalogue, self.sid)
        items = []
        for cat in catalogue.categories:
            if not cat.withheld_fields:
                continue
            if is_list(cat):
                rows = await ctx.loaders.page.load((cat.key, self.sid, LIST_LIMIT, None, None))
            else:
                row = await ctx.loaders.single.load((cat.key, self.sid, None))
                rows = [] if row is None else [row]
            for row in rows:
                for f in cat.withheld_fields:
                    if row.get(f.name + "_held"):
                        kind = row.get("kind") if cat.sensitive else None
                        held = disclosures.held_rule(catalogue, found.key, cat.key, f.name)
                        items.append(
                            WithheldItem(
                                category=cat.key,
                                field=f.name,
                                kind=kind,
                                rule=held.rule,
                                released=held.released,
                                reason=held.reason,
                            )
                        )
        return items

    annotations: dict[str, Any] = {
        "id": strawberry.ID,
        "sid": strawberry.Private[UUID],
        "masked": strawberry.Private[bool],
    }
    namespace: dict[str, Any] = {
        "id": strawberry.field(description="The subject's id."),
        "right_to_know": strawberry.field(
            resolver=right_to_know_resolver,
            description="The GDPR Art. 15(1) / CCPA right-to-know statement for this subject.",
        ),
        "withheld": strawberry.field(
            resolver=withheld_resolver,
            description="Values held about this subject that answers to queries never carry, "
            f"each with the rule that governs it for this subject's jurisdiction: never "
            f"disclosed ({rule}){released}.",
        ),
    }
    namespace.update(extra or {})
    for cat in catalogue.categories:
        namespace[cat.key] = strawberry.field(
            resolver=_resolver(cat, types[cat.key]),
            description=f"{cat.title}: {cat.description}",
        )
    namespace["__annotations__"] = annotations
    return strawberry.type(
        type("Subject", (), namespace),
        description="A person the company holds personal data about, category by category.",
    )
