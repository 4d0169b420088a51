"""What the commands share: their one-line error, and a subject named on the command line."""

from __future__ import annotations

from uuid import UUID

from stores.registry import Stores


class CommandError(Exception):
    """A command that cannot do what was asked; the message is shown as is."""


async def resolve_subject(stores: Stores, ref: str) -> UUID:
    """`KEY=VALUE` with the anchor key, a subject id, or the handle of a seeded demo person."""
    anchor = stores.config.anchor.name
    forms = f"a subject is {anchor}=VALUE, a subject id, or a demo handle (alice, bob, carol, dave)"
    if not ref.isprintable():
        raise CommandError(f"a subject is plain text: {forms}")
    key, eq, value = ref.partition("=")
    if eq:
        if key != anchor:
            raise CommandError(f"{key!r} is not the anchor key: {forms}")
        found = await stores.subject_for_anchor(value)
        if found is None:
            raise CommandError(f"no {anchor} {value!r} in the company's systems")
        return found
    try:
        sid = UUID(ref)
    except ValueError:
        found = await stores.subject_by_handle(ref)
        if found is None:
            raise CommandError(f"no such subject: {forms}") from None
        return found
    if not await stores.subject_exists(sid):
        raise CommandError(f"no such subject: {forms}")
    return sid
