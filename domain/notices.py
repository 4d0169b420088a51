"""What the person is told about their request, and how it reaches them (issue 17, item 7).

Each message is built here from the request, the catalogue (the controller, the right to
complain, in the policy's own words) and the deadlines; it never carries the person's data,
only dates, the request's id, the staff's stated reason and links. A `Mailer` delivers it:
SMTP when `DSAR_SMTP_URL` is set (api/mail.py), else `LogMailer`, which logs that a message
went with the address and body left out, and keeps the last few for the demo page.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from catalogue import Catalogue
from domain import deadlines
from domain.requests import RequestRow

log = logging.getLogger("dsar.notices")


class NoticeKind(StrEnum):
    RECEIPT = "receipt"
    VERIFY = "verify"
    AGENT_CONFIRM = "agent_confirm"
    EXTENSION = "extension"
    READY = "ready"
    REFUSAL = "refusal"


class RefusalBasis(StrEnum):
    """Why a request may be refused, each with the law that allows it."""

    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    MANIFESTLY_UNFOUNDED_OR_EXCESSIVE = "manifestly_unfounded_or_excessive"
    RIGHTS_OF_OTHERS = "rights_of_others"


BASIS_TEXT = {
    RefusalBasis.IDENTITY_NOT_VERIFIED: "We could not verify that you are the person the data "
    "is about to the degree the law requires before we give a copy (GDPR Art. 12(6); CCPA "
    "regulations §§ 7060-7062).",
    RefusalBasis.MANIFESTLY_UNFOUNDED_OR_EXCESSIVE: "The request is manifestly unfounded or "
    "excessive, in particular because of its repetitive character (GDPR Art. 12(5)).",
    RefusalBasis.RIGHTS_OF_OTHERS: "Giving the copy would adversely affect the rights and "
    "freedoms of others (GDPR Art. 15(4)).",
}


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    request: UUID
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, notice: Notice) -> bool:
        """Delivers `notice`; False (logged, never raised) when it could not be sent."""
        ...


class LogMailer:
    """No SMTP server: the log says a message went (kind and request only: no address, no
    body), and the last `keep` messages stay in memory for the demo page under `make serve`."""

    def __init__(self, keep: int = 50) -> None:
        self.sent: deque[Notice] = deque(maxlen=keep)

    async def send(self, notice: Notice) -> bool:
        self.sent.append(notice)
        log.info(
            "notice not sent by e-mail (no DSAR_SMTP_URL): address and body redacted",
            extra={"event": f"{notice.kind.value} {notice.request}"},
        )
        return True


def _day(req: RequestRow, at: datetime) -> str:
    """A date as a person reads it, in the request's own time zone: `15 April 2026`."""
    local = at.astimezone(deadlines.zone(req.time_zone))
    return f"{local.day} {local.strftime('%B %Y')}"


_KIND = {"access": "access", "portability": "portability"}


class Composer:
    """Builds every message from one catalogue and one public address of the service."""

    def __init__(
        self,
        catalogue: Catalogue,
        public_url: str,
        review_reason: str = "",
        downloads_per_link: int = 1,
    ) -> None:
        self.catalogue = catalogue
        self.public_url = public_url.rstrip("/")
        self.review_reason = review_reason
        self.downloads_per_link = downloads_per_link

    @property
    def _signature(self) -> str:
        c = self.catalogue.controller
        contact = f"{c.website}, {c.address}"
        if c.email:
            contact = f"{c.email}, {contact}"
        return f"{c.name}\n{contact}"

    def _complaint(self, req: RequestRow) -> str:
        right = next(r for r in self.catalogue.rights if r.key == "complaint")
        text = right.description
        if req.jurisdiction != "CCPA":
            # GDPR Art. 12(4): the person is told of a complaint and of a judicial remedy.
            text += " Under the GDPR you may also seek a judicial remedy (Art. 79)."
        return text

    def _about(self, req: RequestRow) -> str:
        return (
            f"your {_KIND.get(req.kind, req.kind)} request of {_day(req, req.received_at)} "
            f"(reference {req.id})"
        )

    def receipt(self, req: RequestRow, to: str) -> Notice:
        body = (
            f"We received {self._about(req)}.\n\n"
            f"We will answer it by {_day(req, req.due_at)}. If we need more time, we will tell you "
            "before that date, and why.\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.RECEIPT, req.id, to, "We received your request", body)

    def _hours(self, ttl: timedelta) -> str:
        return f"{int(ttl.total_seconds() // 3600)} hours"

    def verify(self, req: RequestRow, to: str, link: str, ttl: timedelta) -> Notice:
        body = (
            f"We received {self._about(req)}, made with this e-mail address.\n\n"
            "To confirm that the address is yours, open this link and press the button on the "
            f"page it shows, within {self._hours(ttl)}. The link works once.\n{link}\n\n"
            f"We will answer the request by {_day(req, req.due_at)}. If you did not ask for "
            "this, you can ignore this message.\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.VERIFY, req.id, to, "Please confirm your request", body)

    def agent_confirm(
        self, req: RequestRow, to: str, agent: str, link: str, ttl: timedelta
    ) -> Notice:
        body = (
            f"{agent} asked us, as your authorized agent, for {self._about(req)}.\n\n"
            "We act on it only if you confirm that you gave them written permission to do so. "
            f"To confirm, open this link and press the button on the page it shows, within "
            f"{self._hours(ttl)}. The link works once.\n{link}\n\n"
            "If you did not give them permission, do not open the link: we will not act on the "
            "request. Any copy of your data goes to you, never to the agent.\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.AGENT_CONFIRM, req.id, to, "Did you authorize an agent?", body)

    def agent_receipt(self, req: RequestRow, to: str) -> Notice:
        body = (
            f"We received the {_KIND.get(req.kind, req.kind)} request you made as an authorized "
            f"agent on {_day(req, req.received_at)} (reference {req.id}).\n\n"
            "We have asked the person, at their own address, to confirm that they gave you "
            "permission. We act on the request only once they do, and any copy of their data "
            "goes to them, not to you.\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.RECEIPT, req.id, to, "We received your request", body)

    def ready(
        self, req: RequestRow, to: str, expires_at: datetime, held: tuple[str, ...] = ()
    ) -> Notice:
        waiting = ""
        if held:
            waiting = (
                f"Not in it yet: {', '.join(held)}. These wait for review because "
                f"{self.review_reason}. We will send them once they are checked, by "
                f"{_day(req, req.deadline)} at the latest.\n\n"
            )
        body = (
            f"A copy of your personal data is ready, answering {self._about(req)}.\n\n"
            f"Sign in to your account page to download it: {self.public_url}/account\n"
            f"The download works until {_day(req, expires_at)}, for at most "
            f"{self.downloads_per_link} whole download"
            f"{'s' if self.downloads_per_link != 1 else ''}. This message does not contain "
            "your data.\n\n"
            f"{waiting}"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.READY, req.id, to, "A copy of your personal data is ready", body)

    def extension(self, req: RequestRow, to: str) -> Notice:
        assert req.extended_to is not None and req.extension_reason is not None
        body = (
            f"We need more time to answer {self._about(req)}.\n\n"
            f"We will now answer it by {_day(req, req.extended_to)} instead of "
            f"{_day(req, req.due_at)}.\nWhy: {req.extension_reason}\n\n"
            f"{self._complaint(req)}\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.EXTENSION, req.id, to, "We need more time for your request", body)

    def refusal(self, req: RequestRow, to: str) -> Notice:
        assert req.refusal_basis is not None and req.refusal_reason is not None
        basis = BASIS_TEXT[RefusalBasis(req.refusal_basis)]
        body = (
            f"We cannot give you what you asked for in {self._about(req)}.\n\n"
            f"Why: {req.refusal_reason}\n"
            f"The law that allows this: {basis}\n\n"
            f"{self._complaint(req)}\n\n"
            f"{self._signature}\n"
        )
        return Notice(NoticeKind.REFUSAL, req.id, to, "About your request", body)
