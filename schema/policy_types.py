"""What the privacy policy says, as GraphQL types: the catalogue and the right-to-know statement."""

from __future__ import annotations

from datetime import datetime

import strawberry

from catalogue import Catalogue, Category, Right, Term


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
    legal_bases: list[PolicyTerm] = strawberry.field(description="GDPR lawful bases.")
    retention: PolicyTerm = strawberry.field(description="How long it is kept.")

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
                DataField(name=f.name, type=f.type, description=f.description, withheld=f.withheld)
                for f in c.fields
            ],
            sources=terms(c.sources),
            purposes=terms(c.purposes),
            recipients=terms(c.recipients),
            shared_with=terms(c.shared_with),
            legal_bases=terms(c.legal_bases),
            retention=PolicyTerm.of(c.retention),
        )


@strawberry.type(description="A right the policy grants, and the law it comes from.")
class DataRight:
    key: str = strawberry.field(description="Stable key of the right.")
    title: str = strawberry.field(description="The policy's name for the right.")
    description: str = strawberry.field(description="What the policy says of it.")
    gdpr: str | None = strawberry.field(description="The GDPR article it comes from.")
    ccpa: str | None = strawberry.field(description="The CCPA right it comes from.")

    @classmethod
    def of(cls, r: Right) -> DataRight:
        return cls(key=r.key, title=r.title, description=r.description, gdpr=r.gdpr, ccpa=r.ccpa)


@strawberry.type(description="Who is responsible for the data, and their EU/UK representatives.")
class Controller:
    name: str = strawberry.field(description="The controller.")
    website: str = strawberry.field(description="The controller's website.")
    email: str | None = strawberry.field(description="Where to write about privacy.")
    address: str = strawberry.field(description="Postal address.")
    representatives: list[str] = strawberry.field(
        description="GDPR Art. 27 representatives, one postal address each."
    )


@strawberry.type(description="One category held about this subject, as GDPR Art. 15(1) asks.")
class HeldCategory:
    category: DataCategory = strawberry.field(description="The category and what the policy says.")
    records: int = strawberry.field(description="How many records of it are held.")
    disclosed_last_12_months: bool = strawberry.field(
        description="Disclosed to third parties for a business purpose in the last 12 months."
    )
    sold_or_shared_last_12_months: bool = strawberry.field(
        description="Shared for cross-context behavioural advertising in the last 12 months "
        "(never sold for money)."
    )


@strawberry.type(description="The GDPR Art. 15(1) / CCPA right-to-know statement for a subject.")
class RightToKnow:
    generated_at: datetime = strawberry.field(description="When this statement was made.")
    categories: list[HeldCategory] = strawberry.field(description="Each category held.")
    transfers: str = strawberry.field(description="Where the data is processed and stored.")
    safeguards: list[PolicyTerm] = strawberry.field(description="Safeguards for transfers.")
    rights: list[DataRight] = strawberry.field(description="The rights the policy grants.")
    controller: Controller = strawberry.field(description="Who to contact.")
    withholding_rule: str = strawberry.field(description="Why some values are never disclosed.")
    non_discrimination: str = strawberry.field(
        description="The policy's non-discrimination promise."
    )
    authorized_agents: str = strawberry.field(description="How an authorised agent may act.")


def controller(cat: Catalogue) -> Controller:
    c = cat.controller
    reps = [", ".join((r.name, f"Attn.: {r.attention}", *r.address)) for r in cat.representatives]
    return Controller(
        name=c.name, website=c.website, email=c.email, address=c.address, representatives=reps
    )


def right_to_know(cat: Catalogue, counts: dict[str, int], now: datetime) -> RightToKnow:
    """Built from the catalogue and what is held: categories not held are left out."""
    held = [
        HeldCategory(
            category=DataCategory.of(c),
            records=counts[c.key],
            disclosed_last_12_months=bool(c.recipients),
            sold_or_shared_last_12_months=bool(c.shared_with),
        )
        for c in cat.categories
        if counts.get(c.key)
    ]
    return RightToKnow(
        generated_at=now,
        categories=held,
        transfers=cat.transfers.description,
        safeguards=[
            *terms(cat.transfers.safeguards),
            PolicyTerm.of(cat.transfers.dispute_resolution),
        ],
        rights=[DataRight.of(r) for r in cat.rights],
        controller=controller(cat),
        withholding_rule=cat.withholding.description,
        non_discrimination=cat.non_discrimination.description,
        authorized_agents=cat.authorized_agents.description,
    )
