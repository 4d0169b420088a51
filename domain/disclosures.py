"""What of a person's data reached whom in the 12 months before their request (CCPA
§§ 1798.110(c), 1798.115; GDPR Art. 15(1)(c)), worked out from facts, never from constants.

Each recipient the catalogue attaches to a category says how dsar can know (`disclosure`):
- `continuous`: it holds the data for us all along (hosting): disclosed if the category is held.
- `analytics_cookies` / `advertising_cookies`: collected through those cookies while the
  person's recorded choices allowed them. Opting out ("Do Not Sell or Share My Personal
  Information", or the cookie de-selected) stops them from the moment the choice was recorded;
  a choice recorded before the period means nothing went in the period.
- `partner_transfers`: the transfers the person authorised through dsar, from the audit log
  (a partner's download that began), with the partners' names and the last date.
- `on_event`: legal process, a business transfer, an integration: dsar records none of these,
  so the statement says that none is recorded rather than yes or no.
Only the cookie recipients' data counts as "shared" (the policy's share table); nothing is sold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from catalogue import Catalogue, Category, Term
from domain import jurisdiction
from domain.audit import Action
from exporters.facts import CategoryFacts, Disclosure, PersonFacts, Release
from stores.registry import Stores
from stores.scope import scoped

COOKIES = {
    "analytics_cookies": "Performance/Analytical cookies",
    "advertising_cookies": "Retargeting/Advertising cookies",
}


def year_before(at: datetime) -> datetime:
    """The same instant twelve months earlier (29 February becomes the 28th)."""
    try:
        return at.replace(year=at.year - 1)
    except ValueError:
        return at.replace(year=at.year - 1, day=28)


def _day(at: datetime) -> str:
    return at.date().isoformat()


class _Choices:
    """Until when each kind of cookie could collect in the period (None: not at all)."""

    def __init__(self, catalogue: Catalogue, row: Mapping[str, Any] | None, start: datetime):
        self.until: dict[str, datetime | None] = {}
        self.opted_out_at: dict[str, datetime | None] = {}
        self.words = "We hold no record of your choices: we count every cookie as allowed."
        c = catalogue.choices
        if c is None or row is None:
            return
        changed = row.get(c.changed_at)
        changed = changed if isinstance(changed, datetime) else None
        stopped = {
            "advertising_cookies": row.get(c.do_not_sell_or_share) is True
            or row.get(c.advertising_cookies) is False,
            "analytics_cookies": row.get(c.analytics_cookies) is False,
        }
        words = []
        for kind, off in stopped.items():
            if off:
                # Opted out since the choice was recorded; when unknown, counted as allowed.
                self.opted_out_at[kind] = changed
                words.append(
                    f"{COOKIES[kind]} off" + (f" since {_day(changed)}" if changed else "")
                )
            else:
                words.append(f"{COOKIES[kind]} allowed")
        if row.get(c.do_not_sell_or_share) is True:
            when = f" on or before {_day(changed)}" if changed else ""
            words.insert(0, f"You selected “Do Not Sell or Share My Personal Information”{when}")
        self.words = "; ".join(words) + "."
        self.start = start

    def collecting_until(self, kind: str, end: datetime, start: datetime) -> datetime | None:
        """The end of the part of [start, end) in which these cookies could collect."""
        if kind not in self.opted_out_at or self.opted_out_at[kind] is None:
            return end
        stopped = self.opted_out_at[kind]
        assert stopped is not None
        return None if stopped <= start else min(stopped, end)


def _cookies(
    r: Term, kind: str, choices: _Choices, start: datetime, end: datetime, shared: bool
) -> Disclosure:
    until = choices.collecting_until(kind, end, start)
    what = "shared for cross-context behavioral advertising" if shared else "collected"
    if until is None:
        return Disclosure(
            r,
            False,
            f"Not {what} in these 12 months: you turned the {COOKIES[kind]} off before they began.",
        )
    if until < end:
        return Disclosure(
            r,
            True,
            f"{what.capitalize()} through {COOKIES[kind]} until "
            f"{_day(until)}, when you turned them off.",
            last_at=until,
        )
    return Disclosure(
        r, True, f"{what.capitalize()} through {COOKIES[kind]}, which your choices allow."
    )


def _partners(r: Term, sent: Sequence[tuple[str, datetime]]) -> Disclosure:
    if not sent:
        return Disclosure(r, False, "You authorised no transfer of it in these 12 months.")
    names = tuple(dict.fromkeys(name for name, _ in sent))
    last = max(at for _, at in sent)
    return Disclosure(
        r,
        True,
        f"Sent at your request to {', '.join(names)}; last on {_day(last)}.",
        partners=names,
        last_at=last,
    )


def category_facts(
    c: Category,
    choices: _Choices,
    transfers: Mapping[str, list[tuple[str, datetime]]],
    start: datetime,
    end: datetime,
) -> CategoryFacts:
    out = []
    for r in c.recipients:
        match r.disclosure:
            case "continuous":
                out.append(
                    Disclosure(r, True, "They hold it for us while we provide the Services.")
                )
            case "analytics_cookies" | "advertising_cookies":
                out.append(_cookies(r, r.disclosure, choices, start, end, shared=False))
            case "partner_transfers":
                out.append(_partners(r, transfers.get(c.key, [])))
            case _:
                out.append(
                    Disclosure(
                        r,
                        None,
                        "We hold no record of a disclosure of it to them in these 12 months.",
                    )
                )
    shared = [
        _cookies(r, "advertising_cookies", choices, start, end, shared=True) for r in c.shared_with
    ]
    return CategoryFacts(tuple(out), tuple(shared))


async def partner_transfers(
    db: asyncpg.Pool, subject_id: UUID, start: datetime, end: datetime
) -> dict[str, list[tuple[str, datetime]]]:
    """Per category, (partner name, when) of each partner download that began in the period."""
    async with scoped(db, subject=subject_id) as conn:
        rows = await conn.fetch(
            """SELECT a.at, a.categories, coalesce(p.name, a.actor->>'client_id') AS partner
                 FROM audit_log a LEFT JOIN partners p ON p.client_id = a.actor->>'client_id'
                WHERE a.subject_id = $1 AND a.action = $2 AND a.outcome = 'allowed'
                  AND a.at >= $3 AND a.at < $4
                ORDER BY a.seq""",
            subject_id,
            str(Action.TRANSFER_DOWNLOAD),
            start,
            end,
        )
    out: dict[str, list[tuple[str, datetime]]] = {}
    for row in rows:
        for key in row["categories"]:
            out.setdefault(key, []).append((row["partner"], row["at"]))
    return out


async def person_facts(
    stores: Stores,
    db: asyncpg.Pool,
    catalogue: Catalogue,
    subject_id: UUID,
    at: datetime,
    held: Iterable[str] | None = None,
    settled: Awaitable[jurisdiction.Settled] | None = None,
) -> PersonFacts:
    """The facts of one person as of `at` (the request): their jurisdiction, settled and
    recorded now (or by `settled`, the settlement this request makes once for all its fields),
    and per category what reached whom in the 12 months before. `held`: the
    categories the person has records in (the statement leaves the others out); None: all,
    for a bundle, which says them only of the categories it finds records in. Reads only the
    stores of the residence and the choices, so a store that fails later fails the bundle
    itself, mid-stream, as any store does."""
    start = year_before(at)
    found = await (
        jurisdiction.settle(stores, catalogue, subject_id) if settled is None else settled
    )
    row = None
    if catalogue.choices is not None:
        person = await stores.person_of(subject_id, all_keys=False)
        if person is not None:
            row = await stores.single(catalogue.choices.category, person)
    choices = _Choices(catalogue, row, start)
    transfers = await partner_transfers(db, subject_id, start, at)
    keys = set(catalogue.keys if held is None else held)
    return PersonFacts(
        jurisdiction=found.key,
        jurisdiction_source=found.source,
        country=found.country,
        period_from=start,
        period_to=at,
        choices=choices.words,
        categories={
            c.key: category_facts(c, choices, transfers, start, at)
            for c in catalogue
            if c.key in keys
        },
    )


NOT_VERIFIED = (
    "Not included: the values you gave us are released only into a copy you asked for "
    "yourself with a strong, recent sign-in; this copy was not, so they stay withheld."
)


def strongest(verification: Mapping[str, Any]) -> bool:
    """The request was made by the person with a login their identity provider rated strong
    (an acr among the step-up values), the strongest verification dsar knows."""
    required = verification.get("required_acr_values") or []
    return verification.get("method") == "oidc_login" and verification.get("acr") in required


@dataclass(frozen=True, slots=True)
class HeldRule:
    """What governs one withheld item for a person of one jurisdiction: answers to queries never
    carry its value; `released` says whether the person's own copy, asked for with the
    strongest sign-in, does (GDPR Art. 15(3)), and `reason` why, in the catalogue's words."""

    rule: str
    released: bool
    reason: str


def held_rule(catalogue: Catalogue, jurisdiction_key: str, category: str, field: str) -> HeldRule:
    """The rule of a withheld field for a person of `jurisdiction_key`: the CCPA § 7024(d) rule
    ([withholding]) where no release rule applies (California, UNKNOWN), else the release
    rule, releasing the field or keeping it with its documented exception."""
    release = catalogue.release_rule(jurisdiction_key)
    if release is None:
        return HeldRule(catalogue.withholding.title, False, catalogue.withholding.description)
    why = release.exception(category, field)
    if why is not None:
        return HeldRule(release.title, False, why)
    return HeldRule(release.title, True, release.description)


def release_for(
    catalogue: Catalogue,
    facts: PersonFacts,
    purpose: str,
    verification: Mapping[str, Any],
    by_person: bool = False,
) -> Release | None:
    """What the person's jurisdiction releases into their own copy: None under the CCPA
    § 7024(d) rule (California, UNKNOWN); the rule's fields for an access copy asked for with
    the strongest verification by the person themselves (`by_person`: not an agent or an
    operator for them); nothing released, and why, for any other copy."""
    rule = catalogue.release_rule(facts.jurisdiction)
    if rule is None:
        return None
    said = f"sign-in rated {verification.get('acr')} at {verification.get('iss')}"
    if purpose != "access" or not by_person or not strongest(verification):
        return Release(rule, {}, said, NOT_VERIFIED)
    fields = {c.key: rule.fields_of(c.key) for c in catalogue if rule.fields_of(c.key)}
    return Release(rule, fields, said)
