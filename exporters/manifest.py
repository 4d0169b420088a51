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
class LeftOut:
    category: Category
    reason: str


@dataclass(frozen=True, slots=True)
class Header:
    export_id: str
    subject_id: str
    generated_at: datetime
    purpose: str
    purpose_description: str
    format: str
    media_type: str
    # A delta bundle: only records whose time field is after this, where a category has one.
    since: datetime | None = None


def _term(t: Term) -> dict[str, str]:
    return {"key": t.key, "title": t.title, "description": t.description}


def _terms(ts: Sequence[Term]) -> list[dict[str, str]]:
    return [_term(t) for t in ts]


def _category(r: CategoryResult) -> dict[str, Any]:
    c = r.category
    return {
        "title": c.title,
        "description": c.description,
        "origin": c.origin,
        "records": r.records,
        "files": [f.as_json() for f in r.files],
        "schema": r.schema.as_json() if r.schema else None,
        "fields": [
            {"name": f.name + "_held" if f.withheld else f.name, "description": f.description}
            for f in c.fields
        ],
        "sources": _terms(c.sources),
        "purposes": _terms(c.purposes),
        "recipients": _terms(c.recipients),
        "shared_with": _terms(c.shared_with),
        "legal_bases": _terms(c.legal_bases),
        "retention": _term(c.retention),
    }


def _withheld(catalogue: Catalogue, held: Sequence[Held]) -> list[dict[str, Any]]:
    out = []
    for h in held:
        f = catalogue.category(h.category).field(h.field)
        out.append(
            {
                "category": h.category,
                "field": h.field,
                "description": f.description,
                "where": dict(h.about),
                "records": h.records,
                "rule": catalogue.withholding.title,
                "disclosed": False,
            }
        )
    return out


def build_manifest(
    catalogue: Catalogue,
    header: Header,
    results: Sequence[CategoryResult],
    left_out: Sequence[LeftOut],
    held: Sequence[Held],
    searched: Sequence[StoreSearch],
    notes: Mapping[str, Any],
    not_included: Sequence[NotIncluded] = (),
) -> dict[str, Any]:
    files = [f for r in results for f in (*r.files, *((r.schema,) if r.schema else ()))]
    return {
        "format_version": FORMAT_VERSION,
        "export_id": header.export_id,
        "subject_id": header.subject_id,
        "generated_at": header.generated_at.isoformat(),
        "purpose": header.purpose,
        "purpose_description": header.purpose_description,
        "format": header.format,
        "media_type": header.media_type,
        "since": None if header.since is None else header.since.isoformat(),
        "records": sum(r.records for r in results),
        "categories": {r.category.key: _category(r) for r in results},
        "left_out": [
            {"category": x.category.key, "title": x.category.title, "reason": x.reason}
            for x in left_out
        ],
        "withheld": _withheld(catalogue, held),
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
            for r in catalogue.rights
        ],
        "non_discrimination": _term(catalogue.non_discrimination),
        "authorized_agents": _term(catalogue.authorized_agents),
        "transfers": {
            "hosted_in": catalogue.transfers.hosted_in,
            "description": catalogue.transfers.description,
            "safeguards": _terms(catalogue.transfers.safeguards),
            "dispute_resolution": _term(catalogue.transfers.dispute_resolution),
        },
        "controller": {
            "name": catalogue.controller.name,
            "website": catalogue.controller.website,
            "email": catalogue.controller.email,
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
