"""The GraphQL shapes of requests as cases: `Request`, its enums and its timeline. The names are
the contract (CONTRACT.md): outside programs rely on them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from domain.notices import RefusalBasis
from domain.requests import Case, Channel, Degree, Status, Step
from schema.records import PageInfo


@strawberry.enum(description="What the person asked for.")
class RequestKind(enum.Enum):
    ACCESS = "access"
    PORTABILITY = "portability"


# The domain's own enums, named for GraphQL (strawberry marks the classes themselves): one list
# of values each.
strawberry.enum(Channel, name="RequestChannel", description="How it came in.")
strawberry.enum(Status, name="RequestStatus", description="Where it stands.")
strawberry.enum(
    Degree,
    name="VerificationDegree",
    description="How sure the company is of who asked (CCPA regulations §§7060-7062).",
)


@strawberry.enum(description="One step of a request's life.")
class RequestStepKind(enum.Enum):
    RECEIVED = "request.receive"
    ACKNOWLEDGED = "request.acknowledge"
    VERIFIED = "request.verify"
    EXTENDED = "request.extend"
    HELD_FOR_REVIEW = "request.hold"
    APPROVED = "request.approve"
    REFUSED = "request.refuse"
    COMPLETED = "request.complete"
    WITHDRAWN = "request.withdraw"
    EXPORT_OPENED = "export.request"
    DOWNLOADED = "export.download"
    SENT = "export.sent"
    TRANSFER_OPENED = "transfer.start"
    TRANSFERRED = "transfer.download"
    TRANSFER_SENT = "transfer.sent"


_STEPS = {s.value: s for s in RequestStepKind}


@strawberry.type(description="One step of a request, as the audit log recorded it.")
class RequestStep:
    at: datetime = strawberry.field(description="When it happened.")
    step: RequestStepKind = strawberry.field(description="What happened.")
    by: str = strawberry.field(
        description="Who acted, by kind only: customer, support, staff, partner, operator, "
        "anonymous (a person without an account) or service (dsar itself)."
    )
    outcome: str = strawberry.field(description="allowed, denied or failed.")

    @classmethod
    def of(cls, step: Step) -> RequestStep | None:
        kind = _STEPS.get(step.action)
        if kind is None:
            return None
        return cls(at=step.at, step=kind, by=step.actor_kind, outcome=step.outcome)


@strawberry.type(description="How the person was verified.")
class RequestVerification:
    method: str = strawberry.field(
        description="How: `oidc_login` (a strong, recent login), `support_agent:<method>`, "
        "`portability_grant`, `operator`, …; never a document number."
    )
    degree: Degree | None = strawberry.field(
        description="The degree it reached; null when none is recorded."
    )
    verified_at: datetime | None = strawberry.field(description="When the degree was reached.")


@strawberry.type(
    description="A request to access or port personal data, from receipt to its answer, with "
    "the dates the law sets for it."
)
class Request:
    id: strawberry.ID = strawberry.field(description="Request id.")
    kind: RequestKind = strawberry.field(description="Access or portability.")
    channel: Channel = strawberry.field(description="How it came in.")
    status: Status = strawberry.field(description="Where it stands.")
    jurisdiction: str = strawberry.field(
        description="Whose law sets its dates: GDPR, CCPA, or UNKNOWN (the stricter dates)."
    )
    received_at: datetime = strawberry.field(description="When it was received.")
    acknowledge_by: datetime = strawberry.field(
        description="Receipt is confirmed by this time at the latest."
    )
    acknowledged_at: datetime | None = strawberry.field(
        description="When receipt was confirmed; null until it is."
    )
    due_at: datetime = strawberry.field(
        description="When the answer is due, by the law of its jurisdiction."
    )
    extended_to: datetime | None = strawberry.field(
        description="The later date it was extended to, if it was; never without a reason."
    )
    extension_reason: str | None = strawberry.field(description="Why it was extended.")
    closed_at: datetime | None = strawberry.field(
        description="When it was completed, refused or withdrawn."
    )
    verification: RequestVerification | None = strawberry.field(
        description="How the person was verified, when they were."
    )
    exports: list[strawberry.ID] = strawberry.field(
        description="The ids of the exports that answer it (see `export(id:)`)."
    )
    timeline: list[RequestStep] = strawberry.field(
        description="Every step, oldest first; each is a row of the audit log."
    )
    held_for_review: list[str] = strawberry.field(
        default_factory=list,
        description="While IN_REVIEW: the category keys held back from the copy until privacy "
        "staff approve them, because they may also show other people (GDPR Art. 15(4)).",
    )
    notified: bool | None = strawberry.field(
        default=None,
        description="In the answer to extendRequest or refuseRequest: whether the person was "
        "e-mailed (false: no address on record, or the mail server refused); null elsewhere.",
    )

    @classmethod
    def of(cls, case: Case) -> Request:
        r = case.row
        steps = [RequestStep.of(s) for s in case.timeline]
        return cls(
            id=strawberry.ID(str(r.id)),
            kind=RequestKind(r.kind),
            channel=Channel(r.channel),
            status=Status(r.status),
            jurisdiction=r.jurisdiction,
            received_at=r.received_at,
            acknowledge_by=r.acknowledge_by,
            acknowledged_at=r.acknowledged_at,
            due_at=r.due_at,
            extended_to=r.extended_to,
            extension_reason=r.extension_reason,
            closed_at=r.closed_at,
            verification=None
            if r.verification_method is None
            else RequestVerification(
                method=r.verification_method,
                degree=None if r.verification_degree is None else Degree(r.verification_degree),
                verified_at=r.verified_at,
            ),
            exports=[strawberry.ID(str(e)) for e in case.exports],
            timeline=[s for s in steps if s is not None],
            held_for_review=list(case.held),
            notified=case.told,
        )


@strawberry.type(description="The act does not fit the request as it stands.")
class RequestRefused:
    message: str = strawberry.field(description="Why, in plain words.")


RequestActionResult = Annotated[
    Request | RequestRefused,
    strawberry.union(
        "RequestActionResult", description="The request as it now stands, or why not."
    ),
]


strawberry.enum(
    RefusalBasis,
    name="RefusalBasis",
    description="Why a request is refused, each with the law that allows it.",
)


@strawberry.type(description="One request of the queue.")
class RequestEdge:
    node: Request = strawberry.field(description="The request.")
    cursor: str = strawberry.field(description="Pass as `after` for the requests after it.")


@strawberry.type(description="A page of the queue, earliest due first (the overdue first).")
class RequestConnection:
    edges: list[RequestEdge] = strawberry.field(description="The requests of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more follow.")


@strawberry.input(description="An authorized agent acting for the person (CCPA regulations §7063).")
class AgentInput:
    name: str = strawberry.field(description="The agent's name, or their business's.")
    email: str = strawberry.field(description="Where the agent is told of the request.")


@strawberry.input(description="A request for one's own data, without an account.")
class SubmitRequestInput:
    email: str = strawberry.field(
        description="The person's own e-mail address: the confirmation link goes there."
    )
    kind: RequestKind = strawberry.field(
        default=RequestKind.ACCESS, description="Access (a copy) or portability."
    )
    jurisdiction: str | None = strawberry.field(
        default=None,
        description="Where the person lives, if they say: GDPR or CCPA (else UNKNOWN: the "
        "stricter dates).",
    )
    agent: AgentInput | None = strawberry.field(
        default=None,
        description="Set when an authorized agent submits for the person, with their written "
        "permission; the person is asked to confirm by e-mail.",
    )
    time_zone: str | None = strawberry.field(
        default=None, description="The person's IANA time zone, for the dates (else UTC)."
    )


@strawberry.type(
    description="The request was taken. The same answer whether or not the address is known."
)
class SubmittedRequest:
    message: str = strawberry.field(description="What happens next, in plain words.")


@strawberry.type(description="The request cannot be taken as written.")
class InvalidSubmission:
    message: str = strawberry.field(description="What to correct.")


SubmitRequestResult = Annotated[
    SubmittedRequest | InvalidSubmission,
    strawberry.union("SubmitRequestResult", description="Taken, or what to correct."),
]
