"""What the privacy policy says, as GraphQL types: the catalogue and the right-to-know statement."""

from __future__ import annotations

from datetime import datetime

import strawberry

from catalogue import Catalogue, Category, Right, Safeguard, Statement, Term
from exporters.facts import Disclosure, PersonFacts
from exporters.manifest import how_to_ask


@strawberry.type(description="An entry of the policy: a source, purpose, recipient, basis or rule.")
class PolicyTerm:
    key: str = strawberry.field(description="Stable key of the entry.")
    title: str = strawberry.field(description="The policy's name for it.")
    description: str = strawberry.field(description="What the policy says of it.")
    group: str | None = strawberry.field(description="For purposes: the heading they stand under.")

    @classmethod
    def of(cls, term: Term) -> PolicyTerm:
        return cls(key=term.key, title=term.title, description=term.description, group=term.group)


def terms(items: tuple[Term, ...]) -> list[PolicyTerm]:
    return [PolicyTerm.of(t) for t in items]


@strawberry.type(description="One field of a category of personal data.")
class DataField:
    name: str = strawberry.field(description="Field name as stored (snake_case).")
    type: str = strawberry.field(description="string, text, integer, boolean, timestamp or inet.")
    description: str = strawberry.field(description="What the field holds.")
    withheld: bool = strawberry.field(
        description="Held but never disclosed (CCPA regulations §7024(d))."
    )
    not_in_policy: str | None = strawberry.field(
        description="Held although the privacy policy does not name it: why."
    )


@strawberry.type(description="A category of personal data the policy names, with all it says.")
class DataCategory:
    key: str = strawberry.field(description="Category key, as used across the API and exports.")
    title: str = strawberry.field(description="The policy's name for the category.")
    description: str = strawberry.field(description="The policy's examples of the category.")
    origin: str = strawberry.field(description="provided, observed or inferred.")
    portable: bool = strawberry.field(description="Included in portability (GDPR Art. 20).")
    sensitive: bool = strawberry.field(description="Sensitive personal information (CCPA).")
    fields: list[DataField] = strawberry.field(description="The fields held in this category.")
    sources: list[PolicyTerm] = strawberry.field(description="Where the data comes from.")
    purposes: list[PolicyTerm] = strawberry.field(description="What the data is used for.")
    recipients: list[PolicyTerm] = strawberry.field(
        description="Kinds of third parties it is disclosed to for business purposes."
    )
    shared_with: list[PolicyTerm] = strawberry.field(
        description="Kinds of third parties it is shared with for cross-context advertising."
    )
    legal_bases: list[PolicyTerm] = strawberry.field(
        description="GDPR lawful bases, only those the policy gives for this category."
    )
    legal_bases_note: str | None = strawberry.field(
        description="What the policy says of the lawful basis where its lists do not name it."
    )
    retention: PolicyTerm = strawberry.field(description="How long it is kept.")
    not_in_policy: str | None = strawberry.field(
        description="A category the privacy policy does not name: why it is held."
    )

    @classmethod
    def of(cls, c: Category) -> DataCategory:
        return cls(
            key=c.key,
            title=c.title,
            description=c.description,
            origin=c.origin,
            portable=c.portable,
            sensitive=c.sensitive,
            fields=[
                DataField(
                    name=f.name,
                    type=f.type,
                    description=f.description,
                    withheld=f.withheld,
                    not_in_policy=f.not_in_policy,
                )
                for f in c.fields
            ],
            sources=terms(c.sources),
            purposes=terms(c.purposes),
            recipients=terms(c.recipients),
            shared_with=terms(c.shared_with),
            legal_bases=terms(c.legal_bases),
            legal_bases_note=c.legal_bases_note,
            retention=PolicyTerm.of(c.retention),
            not_in_policy=c.not_in_policy,
        )


@strawberry.type(description="A right the policy grants, and the law it comes from.")
class DataRight:
    key: str = strawberry.field(description="Stable key of the right.")
    title: str = strawberry.field(description="The policy's name for the right.")
    description: str = strawberry.field(description="What the policy says of it.")
    gdpr: str | None = strawberry.field(description="The GDPR article it comes from.")
    ccpa: str | None = strawberry.field(description="The CCPA right it comes from.")
    how: str | None = strawberry.field(
        description="How to exercise it by request: whom to write to."
    )

    @classmethod
    def of(cls, r: Right, email: str | None = None) -> DataRight:
        return cls(
            key=r.key,
            title=r.title,
            description=r.description,
            gdpr=r.gdpr,
            ccpa=r.ccpa,
            how=how_to_ask(r.by_request, email),
        )


@strawberry.type(description="A statement the privacy policy makes, repeated to the person.")
class PolicyStatement:
    key: str = strawberry.field(description="Stable key of the statement.")
    title: str = strawberry.field(description="What it is about.")
    description: str = strawberry.field(description="The statement, in the policy's words.")
    law: str | None = strawberry.field(description="The provision that asks for it.")

    @classmethod
    def of(cls, s: Statement) -> PolicyStatement:
        return cls(key=s.key, title=s.title, description=s.description, law=s.law)


@strawberry.type(description="A transfer safeguard (GDPR Art. 15(2)) and the data it covers.")
class TransferSafeguard:
    key: str = strawberry.field(description="Stable key of the safeguard.")
    title: str = strawberry.field(description="The policy's name for it.")
    description: str = strawberry.field(description="What the policy says of it.")
    covers: str = strawberry.field(description="Which personal data it covers.")
    covers_yours: bool = strawberry.field(
        description="It covers this person's data (received from where they live)."
    )

    @classmethod
    def of(cls, s: Safeguard, country: str | None) -> TransferSafeguard:
        code = (country or "").upper()
        return cls(
            key=s.key,
            title=s.title,
            description=s.description,
            covers=s.covers,
            covers_yours=code in s.countries,
        )


@strawberry.type(description="Whether one kind of recipient received this data in the period.")
class RecipientDisclosure:
    recipient: PolicyTerm = strawberry.field(description="The kind of recipient.")
    disclosed: bool | None = strawberry.field(
        description="Received it in the 12 months before the request; null where no record "
        "either way is kept (legal process, business transfers, integrations)."
    )
    note: str = strawberry.field(description="How this is known, in words.")
    partners: list[str] = strawberry.field(description="Partners it was sent to at your request.")
    last_at: datetime | None = strawberry.field(description="The last time, where known.")

    @classmethod
    def of(cls, d: Disclosure) -> RecipientDisclosure:
        return cls(
            recipient=PolicyTerm.of(d.recipient),
            disclosed=d.disclosed,
            note=d.note,
            partners=list(d.partners),
            last_at=d.last_at,
        )


@strawberry.type(description="Whose law applies to this person, as recorded.")
class SubjectJurisdiction:
    key: str = strawberry.field(description="GDPR, CCPA or UNKNOWN (the stricter rule of each).")
    title: str = strawberry.field(description="In words.")
    description: str = strawberry.field(description="What it means for this person.")
    source: str = strawberry.field(
        description="stores (where our records say you live), declared (you said so), "
        "conflict (the two disagree) or unknown."
    )


@strawberry.type(description="Who is responsible for the data, and their EU/UK representatives.")
class Controller:
    name: str = strawberry.field(description="The controller.")
    website: str = strawberry.field(description="The controller's website.")
    email: str | None = strawberry.field(description="Where to write about privacy.")
    email_is_demo: bool = strawberry.field(
        description="The e-mail address is a demonstration stand-in, not the company's own."
    )
    address: str = strawberry.field(description="Postal address.")
    representatives: list[str] = strawberry.field(
        description="GDPR Art. 27 representatives, one postal address each."
    )


@strawberry.type(description="One category held about this subject, as GDPR Art. 15(1) asks.")
class HeldCategory:
    category: DataCategory = strawberry.field(description="The category and what the policy says.")
    records: int = strawberry.field(description="How many records of it are held.")
    disclosed_last_12_months: bool = strawberry.field(
        description="Disclosed to third parties for a business purpose in the 12 months "
        "before the request, as recorded for this person."
    )
    sold_or_shared_last_12_months: bool = strawberry.field(
        description="Shared for cross-context behavioural advertising in the 12 months before "
        "the request, only while this person's choices allowed it (never sold)."
    )
    disclosures: list[RecipientDisclosure] = strawberry.field(
        description="Each kind of recipient, and whether it received this data in the period."
    )
    shared: list[RecipientDisclosure] = strawberry.field(
        description="Each kind of recipient it may be shared with for advertising, and whether "
        "it was in the period."
    )


@strawberry.type(description="The GDPR Art. 15(1) / CCPA right-to-know statement for a subject.")
class RightToKnow:
    generated_at: datetime = strawberry.field(description="When this statement was made.")
    period_from: datetime = strawberry.field(
        description="The start of the 12 months the disclosures cover."
    )
    jurisdiction: SubjectJurisdiction = strawberry.field(description="Whose law applies.")
    choices: str = strawberry.field(description="The person's recorded choices, in words.")
    categories: list[HeldCategory] = strawberry.field(description="Each category held.")
    retention_criteria: str = strawberry.field(
        description="What decides how long data is kept where no period is given."
    )
    statements: list[PolicyStatement] = strawberry.field(
        description="The policy's statements for this person: sale, minors, sensitive data, "
        "automated decisions and profiling, the DPF's liability, enforcement and arbitration."
    )
    transfers: str = strawberry.field(description="Where the data is processed and stored.")
    safeguards: list[PolicyTerm] = strawberry.field(description="Safeguards for transfers.")
    transfer_safeguards: list[TransferSafeguard] = strawberry.field(
        description="Each transfer safeguard, the data it covers, and whether it covers yours."
    )
    rights: list[DataRight] = strawberry.field(description="The rights the policy grants.")
    controller: Controller = strawberry.field(description="Who to contact.")
    withholding_rule: str = strawberry.field(
        description="The rule for the values that answers to queries never carry, by the "
        "subject's jurisdiction: the law that withholds them, or the one that makes those the "
        "subject gave part of their own copy (`withheld` says it item by item)."
    )
    non_discrimination: str = strawberry.field(
        description="The policy's non-discrimination promise."
    )
    authorized_agents: str = strawberry.field(description="How an authorised agent may act.")


def controller(cat: Catalogue) -> Controller:
    c = cat.controller
    reps = [", ".join((r.name, f"Attn.: {r.attention}", *r.address)) for r in cat.representatives]
    return Controller(
        name=c.name,
        website=c.website,
        email=c.email,
        email_is_demo=c.demo_email,
        address=c.address,
        representatives=reps,
    )


def right_to_know(
    cat: Catalogue, counts: dict[str, int], now: datetime, facts: PersonFacts
) -> RightToKnow:
    """Built from the catalogue, what is held and the person's facts (their jurisdiction, and
    what reached whom in the 12 months before `now`): categories not held are left out."""
    held = []
    for c in cat.categories:
        if not counts.get(c.key):
            continue
        f = facts.of(c.key)
        held.append(
            HeldCategory(
                category=DataCategory.of(c),
                records=counts[c.key],
                disclosed_last_12_months=f.disclosed,
                sold_or_shared_last_12_months=f.sold_or_shared,
                disclosures=[RecipientDisclosure.of(d) for d in f.disclosures],
                shared=[RecipientDisclosure.of(d) for d in f.shared],
            )
        )
    j = cat.jurisdiction(facts.jurisdiction)
    assert cat.retention_criteria is not None  # required by the loader
    release = cat.release_rule(facts.jurisdiction)
    return RightToKnow(
        generated_at=now,
        period_from=facts.period_from,
        jurisdiction=SubjectJurisdiction(
            key=j.key, title=j.title, description=j.description, source=facts.jurisdiction_source
        ),
        choices=facts.choices,
        categories=held,
        retention_criteria=cat.retention_criteria.description,
        statements=[PolicyStatement.of(s) for s in cat.statements if s.said_to(facts.jurisdiction)],
        transfer_safeguards=[
            TransferSafeguard.of(s, facts.country) for s in cat.transfers.safeguards
        ],
        transfers=cat.transfers.description,
        safeguards=[
            *(
                PolicyTerm(key=g.key, title=g.title, description=g.description, group=None)
                for g in cat.transfers.safeguards
            ),
            PolicyTerm.of(cat.transfers.dispute_resolution),
        ],
        rights=[DataRight.of(r, cat.controller.email) for r in cat.rights],
        controller=controller(cat),
        withholding_rule=(release or cat.withholding).description,
        non_discrimination=cat.non_discrimination.description,
        authorized_agents=cat.authorized_agents.description,
    )
