"""`manifest.json`: what a bundle holds and why, as CONTRACT.md ("Export bundle") lists it.

Everything said about a category (sources, purposes, recipients, legal bases, retention) and
about the subject's rights, transfers and whom to contact comes from the catalogue, that is
from the privacy policy; the counts, sizes and digests are those measured while streaming.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalogue import Catalogue, Category, Term
from exporters.facts import CategoryFacts, PersonFacts, Release
from stores.streams import Held

FORMAT_VERSION = "1.0"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    bytes: int
    sha256: str
    media_type: str

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "media_type": self.media_type,
        }


@dataclass(slots=True)
class CategoryResult:
    category: Category
    records: int = 0
    files: list[FileEntry] = field(default_factory=list)
    schema: FileEntry | None = None
    pages: list[FileEntry] = field(default_factory=list)  # pages/<key>-<n>.html
    pages_truncated: bool = False


@dataclass(frozen=True, slots=True)
class StoreSearch:
    name: str
    kind: str
    categories: tuple[str, ...]
    searched_at: datetime
    consistency: str


@dataclass(frozen=True, slots=True)
class NotIncluded:
    """Something held that the bundle leaves out for the person's own sake or another's:
    `what` names it (files, or the kind of identifier), `count` how many, `reason` why."""

    category: str
    what: str
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class ServiceFile:
    """One list of the records dsar itself holds about the person (`service/`)."""

    name: str
    description: str
    records: int
    file: FileEntry


@dataclass(frozen=True, slots=True)
class LeftOut:
    category: Category
    reason: str


@dataclass(frozen=True, slots=True)
class Header:
    export_id: str
    # dsar's subject id in the person's own copy; in a partner's bundle, that partner's
    # pairwise reference instead (`subject_ref`): no partner ever receives dsar's id.
    subject_id: str
    generated_at: datetime
    purpose: str
    purpose_description: str
    format: str
    media_type: str
    # A delta bundle: only records whose time field is after this, where a category has one.
    since: datetime | None = None
    for_partner: bool = False


def _term(t: Term) -> dict[str, str]:
    return {"key": t.key, "title": t.title, "description": t.description}


def _terms(ts: Sequence[Term]) -> list[dict[str, str]]:
    return [_term(t) for t in ts]


def _category(r: CategoryResult, criteria: str, facts: CategoryFacts | None) -> dict[str, Any]:
    c = r.category
    said: dict[str, Any] = {
        "legal_bases_note": c.legal_bases_note,
        "not_in_policy": c.not_in_policy,
        "retention": _term(c.retention) | {"criteria": criteria},
    }
    if facts is not None:
        said |= {
            "disclosed_last_12_months": facts.disclosed,
            "disclosures": [d.as_json() for d in facts.disclosures],
            "sold_last_12_months": False,
            "shared_last_12_months": facts.sold_or_shared,
            "shared": [d.as_json() for d in facts.shared],
        }
    return {
        "title": c.title,
        "description": c.description,
        "origin": c.origin,
        "records": r.records,
        "files": [f.as_json() for f in r.files],
        "schema": r.schema.as_json() if r.schema else None,
        "pages": [p.path for p in r.pages],
        "pages_truncated": r.pages_truncated,
        "fields": [
            {
                "name": f.name + "_held" if f.withheld else f.name,
                "description": f.description,
            }
            | ({"not_in_policy": f.not_in_policy} if f.not_in_policy else {})
            | ({"released": True} if f.released else {})
            for f in c.fields
        ],
        "sources": _terms(c.sources),
        "purposes": _terms(c.purposes),
        "recipients": _terms(c.recipients),
        "shared_with": _terms(c.shared_with),
        "legal_bases": _terms(c.legal_bases),
    } | said


def _withheld(
    catalogue: Catalogue,
    held: Sequence[Held],
    released: set[tuple[str, str]],
    release: Release | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each item held under a withheld field: (still withheld, released into this copy)."""
    kept, given = [], []
    for h in held:
        f = catalogue.category(h.category).field(h.field)
        item = {
            "category": h.category,
            "field": h.field,
            "description": f.description,
            "where": dict(h.about),
            "records": h.records,
        }
        if (h.category, h.field) in released and release is not None:
            given.append(
                item
                | {"rule": release.rule.title, "disclosed": True}
                | {"verification": release.verification}
            )
            continue
        reason = None
        if release is not None:
            reason = release.rule.exception(h.category, h.field) or release.unverified
        rule = catalogue.withholding.title if reason is None else release.rule.title  # type: ignore[union-attr]
        kept.append(item | {"rule": rule, "reason": reason, "disclosed": False})
    return kept, given


def build_manifest(
    catalogue: Catalogue,
    header: Header,
    results: Sequence[CategoryResult],
    left_out: Sequence[LeftOut],
    held: Sequence[Held],
    searched: Sequence[StoreSearch],
    notes: Mapping[str, Any],
    not_included: Sequence[NotIncluded] = (),
    facts: PersonFacts | None = None,
    release: Release | None = None,
    service: Sequence[ServiceFile] = (),
) -> dict[str, Any]:
    files = [f for r in results for f in (*r.files, *((r.schema,) if r.schema else ()))]
    files += [p for r in results for p in r.pages]
    files += [s.file for s in service]
    criteria = catalogue.retention_criteria
    criteria_text = "" if criteria is None else criteria.description
    who = "subject_ref" if header.for_partner else "subject_id"
    released = {(r.category.key, f.name) for r in results for f in r.category.fields if f.released}
    withheld, given = _withheld(catalogue, held, released, release)
    yours = catalogue.transfers.safeguards_for(None if facts is None else facts.country)
    jurisdiction = "UNKNOWN" if facts is None else facts.jurisdiction
    return {
        "format_version": FORMAT_VERSION,
        "export_id": header.export_id,
        who: header.subject_id,
        "generated_at": header.generated_at.isoformat(),
        "purpose": header.purpose,
        "purpose_description": header.purpose_description,
        "format": header.format,
        "media_type": header.media_type,
        "since": None if header.since is None else header.since.isoformat(),
        "records": sum(r.records for r in results),
        "categories": {
            # Disclosures are said of what the person has records of; a category found empty
            # keeps the policy's list alone.
            r.category.key: _category(
                r, criteria_text, facts.of(r.category.key) if facts and r.records else None
            )
            for r in results
        },
        **_person(catalogue, facts),
        "retention_criteria": None if criteria is None else _term(criteria),
        "statements": [
            {"key": s.key, "title": s.title, "description": s.description, "law": s.law}
            for s in catalogue.statements
            if s.said_to(jurisdiction)
        ],
        "left_out": [
            {"category": x.category.key, "title": x.category.title, "reason": x.reason}
            for x in left_out
        ],
        "service": {
            s.name: {"description": s.description, "records": s.records, "file": s.file.as_json()}
            for s in service
        },
        "withheld": withheld,
        "released": given,
        "release_rule": None
        if release is None
        else {
            "key": release.rule.key,
            "title": release.rule.title,
            "description": release.rule.description,
            "applied": not release.unverified,
            "why_not": release.unverified,
        },
        "held_not_included": [
            {"category": n.category or None, "what": n.what, "count": n.count, "reason": n.reason}
            for n in not_included
        ],
        "withholding_rule": _term(catalogue.withholding),
        "stores": [
            {
                "name": s.name,
                "kind": s.kind,
                "categories": list(s.categories),
                "searched_at": s.searched_at.isoformat(),
                "consistency": s.consistency,
            }
            for s in searched
        ],
        **notes,
        "files": [f.as_json() for f in files],
        "rights": [
            {"key": r.key, "title": r.title, "description": r.description}
            | {"gdpr": r.gdpr, "ccpa": r.ccpa}
            | {"how": how_to_ask(r.by_request, catalogue.controller.email)}
            for r in catalogue.rights
        ],
        "non_discrimination": _term(catalogue.non_discrimination),
        "authorized_agents": _term(catalogue.authorized_agents),
        "transfers": {
            "hosted_in": catalogue.transfers.hosted_in,
            "description": catalogue.transfers.description,
            "safeguards": [
                {"key": g.key, "title": g.title, "description": g.description}
                | {"covers": g.covers, "covers_yours": facts is not None and g in yours}
                for g in catalogue.transfers.safeguards
            ],
            "dispute_resolution": _term(catalogue.transfers.dispute_resolution),
        },
        "controller": {
            "name": catalogue.controller.name,
            "website": catalogue.controller.website,
            "email": catalogue.controller.email,
            "email_is_demo": catalogue.controller.demo_email,
            "address": catalogue.controller.address,
        },
        "representatives": [
            {
                "region": r.region,
                "name": r.name,
                "attention": r.attention,
                "address": list(r.address),
            }
            for r in catalogue.representatives
        ],
    }


def how_to_ask(by_request: bool, email: str | None) -> str | None:
    """A right that works "by request" names the address to write to."""
    if not by_request:
        return None
    if email is None:
        return "By request: contact us as described in our privacy policy."
    return f"By request: write to {email}."


def _person(catalogue: Catalogue, facts: PersonFacts | None) -> dict[str, Any]:
    """Whose law applies and the period the disclosures cover (the person's own copy only)."""
    if facts is None:
        return {}
    j = catalogue.jurisdiction(facts.jurisdiction)
    return {
        "jurisdiction": {
            "key": j.key,
            "title": j.title,
            "description": j.description,
            "source": facts.jurisdiction_source,
        },
        "period": {"from": facts.period_from.isoformat(), "to": facts.period_to.isoformat()},
        "choices": facts.choices,
    }
