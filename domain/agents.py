"""What a support agent does, one function per act: find people by e-mail, read one, unmask one
value, open an export for one. Each checks the caller and the stated access, writes the audit
row first (`domain.support.admit`), and records every refusal as denied before it raises.

Raises, besides each function's own: `Forbidden` (not an agent), `InvalidAccess` (a malformed
ticket or reason, or a ticket about someone else), `LimitReached`, `AuditUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from domain import audit, casework, jurisdiction, requests, support
from domain.audit import Action
from domain.errors import Forbidden, LimitReached, Refused, StepUpRequired
from domain.exports import ExportRow, InvalidExportRequest
from domain.principals import Principal, SupportAgent
from domain.services import Services
from domain.stepup import require_strong_login
from domain.support import Access, InvalidAccess, InvalidInput
from stores.scope import scoped


@dataclass(frozen=True, slots=True)
class Look:
    """One act of an agent: who, under which ticket and reason, for which request."""

    services: Services
    principal: Principal | None
    ticket: str
    reason: str
    request_id: str = "-"

    async def deny(
        self,
        action: Action,
        subject_id: UUID | None = None,
        categories: Sequence[str] = (),
        purpose: dict[str, str] | None = None,
    ) -> None:
        await audit.denied(
            self.services.audit,
            request_id=self.request_id,
            actor=self.principal,
            subject_id=subject_id,
            action=action,
            purpose=purpose,
            categories=categories,
        )

    async def checked(
        self, action: Action, subject_id: UUID | None = None
    ) -> tuple[SupportAgent, Access]:
        agent = self.principal
        if not isinstance(agent, SupportAgent):  # e.g. a partner token that carries the scope
            await self.deny(Action.ACCESS_DENIED, subject_id)
            raise Forbidden
        try:
            return agent, Access.of(self.ticket, self.reason)
        except InvalidAccess:
            await self.deny(action, subject_id)
            raise

    async def admit(
        self,
        agent: SupportAgent,
        access: Access,
        action: Action,
        subjects: Sequence[UUID | None],
        categories: Sequence[str],
    ) -> None:
        await support.admit(
            self.services.db,
            self.services.audit,
            agent,
            access,
            request_id=self.request_id,
            action=action,
            subjects=subjects,
            categories=categories,
            per_hour=self.services.rules.support_subjects_per_hour,
        )


def in_catalogue_order(services: Services, keys: set[str]) -> list[str]:
    """The category keys a look concerns, in the catalogue's order."""
    return [c.key for c in services.catalogue if c.key in keys]


async def find_subjects(look: Look, email: str, categories: set[str]) -> list[UUID]:
    """The people whose e-mail address is exactly this one (at most `support.MAX_MATCHES`).
    A search that matches no one is recorded too: one row with no subject."""
    agent, access = await look.checked(Action.SUBJECT_FIND)
    try:
        address = support.normalise_email(email)
    except InvalidInput:
        await look.deny(Action.SUBJECT_FIND, purpose=access.purpose())
        raise
    found = await look.services.stores.subjects_by_email(address, support.MAX_MATCHES)
    cats = in_catalogue_order(look.services, categories)
    await look.admit(agent, access, Action.SUBJECT_FIND, found or [None], cats)
    return found


async def read_subject(look: Look, subject_id: UUID | None, categories: set[str]) -> UUID | None:
    """The person, when there is one by that id (`None`: not an id)."""
    agent, access = await look.checked(Action.SUBJECT_READ, subject_id)
    if subject_id is None:
        await look.deny(Action.SUBJECT_READ, purpose=access.purpose())
        raise InvalidInput("`id` is not a subject id.")
    exists = await look.services.stores.subject_exists(subject_id)
    cats = in_catalogue_order(look.services, categories)
    await look.admit(agent, access, Action.SUBJECT_READ, [subject_id if exists else None], cats)
    return subject_id if exists else None


@dataclass(frozen=True, slots=True)
class Unmasked:
    subject_id: UUID
    category: str
    field: str
    record: int | None
    value: str | None


async def unmask(
    look: Look, subject_id: UUID | None, category: str, field: str, record: int | None
) -> Unmasked:
    """One masked value as stored, read only after its audit row was written. Raises also
    `Refused` (no such subject, a value that is never shown, a record named or missing) and
    `StepUpRequired`."""
    services = look.services
    catalogue = services.catalogue
    agent, access = await look.checked(Action.FIELD_UNMASK, subject_id)
    try:
        cat, f = support.unmaskable(catalogue, category, field)
    except InvalidInput:
        known = category in catalogue.keys and any(
            x.name == field for x in catalogue.category(category).fields
        )
        names = [f"{category}.{field}"] if known else []
        await look.deny(Action.FIELD_UNMASK, subject_id, names, access.purpose())
        raise
    names = [f"{cat.key}.{f.name}"]
    try:
        if subject_id is None or not await services.stores.subject_exists(subject_id):
            raise Refused("No such subject.")
        if support.has_records(cat) != (record is not None):
            raise Refused(
                "Name the record (its `id`) for a category with many records, and only then."
            )
        rules = services.rules
        require_strong_login(agent, rules.step_up_acr_values, rules.step_up_max_age)
    except (Refused, StepUpRequired):
        await look.deny(Action.FIELD_UNMASK, subject_id, names, access.purpose())
        raise
    await look.admit(agent, access, Action.FIELD_UNMASK, [subject_id], names)
    value = await support.field_value(services.stores, cat, f, subject_id, record)
    return Unmasked(subject_id, cat.key, f.name, record, value)


async def request_export(
    look: Look,
    subject_id: UUID | None,
    *,
    format: str,
    purpose: str,
    categories: Sequence[str] | None,
    method: str,
    note: str | None,
) -> ExportRow:
    """An export opened for a person whose identity the agent verified
    (`support.request_export_for`). Raises also `InvalidExportRequest` or `InvalidInput`."""
    services = look.services
    agent, access = await look.checked(Action.EXPORT_REQUEST, subject_id)
    try:
        checked_note = support.verification_note(note)
        if subject_id is None or not await services.stores.subject_exists(subject_id):
            raise InvalidExportRequest("No such subject.")
        # Whose law sets the request's dates: what the stores say now.
        await jurisdiction.settle(services.stores, services.catalogue, subject_id)
        row = await support.request_export_for(
            services.db,
            services.audit,
            services.catalogue,
            services.rules,
            agent,
            access,
            subject_id,
            format=format,
            purpose=purpose,
            categories=categories,
            method=method,
            note=checked_note,
            request_id=look.request_id,
        )
    # An `InvalidAccess` (the ticket is someone else's) has its denied row written already.
    except (InvalidInput, InvalidExportRequest, LimitReached):
        await look.deny(Action.EXPORT_REQUEST, subject_id, purpose=access.purpose())
        raise
    # The copy goes to the person, who is told by e-mail where to find it (never the data).
    req = None
    if row.request_id is not None:
        async with scoped(services.db, subject=row.subject_id) as conn:
            req = await requests.get(conn, row.request_id)
    if req is not None:
        # What waits for review (GDPR Art. 15(4)): told to the person with the rest.
        waiting = tuple(
            c.title
            for c in services.catalogue
            if req.status == "in_review"
            and c.key in services.rules.requests.review.categories
            and c.key not in row.categories
            and (categories is None or c.key in categories)
        )
        await casework.notify(
            services, req, lambda to: services.composer.ready(req, to, row.expires_at, waiting)
        )
    return row
