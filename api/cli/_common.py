"""What the commands share: their one-line error, and a subject named on the command line."""

from __future__ import annotations

from uuid import UUID

from stores.registry import Stores


class CommandError(Exception):
    """A command that cannot do what was asked; the message is shown as is."""


async def resolve_subject(stores: Stores, ref: str) -> UUID:
    """A subject id, or the handle of a seeded demo subject."""
    try:
        sid = UUID(ref)
    except ValueError:
        found = await stores.subject_by_handle(ref)
        if found is None:
            raise CommandError("no such subject") from None
        return found
    if not await stores.subject_exists(sid):
        raise CommandError("no such subject")
    return sid
